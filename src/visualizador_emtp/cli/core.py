"""emtp-admin init, serve."""

from __future__ import annotations

import click

from visualizador_emtp.cli.common import CliError, get_instance


def register(cli: click.Group) -> None:
    cli.add_command(init)
    cli.add_command(serve)


@click.command()
@click.option("--rotate-secret", is_flag=True, help="Genera una clave secreta nueva (cierra todas las sesiones).")
@click.pass_context
def init(ctx: click.Context, rotate_secret: bool) -> None:
    """Crea o completa la carpeta de la instancia: config, clave secreta, carpetas y base de datos."""
    from visualizador_emtp.home import init_home

    inst = get_instance(ctx)
    try:
        report = init_home(inst, rotate_secret=rotate_secret)
    except OSError as exc:
        raise CliError(f"No se pudo preparar {inst.home}: {exc.strerror or exc}.") from None
    for line in report:
        click.echo(line)
    click.echo(f"Instancia lista en {inst.home}.")
    click.echo("Siguiente paso: cree el primer administrador con "
               "'emtp-admin users create --role admin USUARIO'.")


@click.command()
@click.option("--bind", help="host:puerto (por defecto server.bind, 0.0.0.0:8051).")
@click.option("--workers", type=click.IntRange(1, 64), help="Procesos de gunicorn (por defecto server.workers).")
@click.option("--dev", is_flag=True, help="Servidor de desarrollo de Flask con recarga automática (no usar en producción).")
@click.pass_context
def serve(ctx: click.Context, bind: str | None, workers: int | None, dev: bool) -> None:
    """Inicia el servidor web (gunicorn)."""
    from visualizador_emtp.config import ConfigError, load_settings
    from visualizador_emtp.serving import PortInUse, StartupError, run_dev, run_gunicorn

    root = ctx.find_root()
    overrides = {}
    if bind:
        overrides["server.bind"] = bind
    if workers:
        overrides["server.workers"] = workers
    try:
        settings = load_settings(root.obj.get("home"), overrides=overrides)
    except ConfigError as exc:
        raise CliError(str(exc), 2) from None
    try:
        if dev:
            run_dev(settings)
        else:
            run_gunicorn(settings)
    except PortInUse as exc:
        raise CliError(str(exc), 3) from None
    except (StartupError, ConfigError) as exc:
        raise CliError(str(exc), 2) from None
