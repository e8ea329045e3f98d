"""emtp-admin db upgrade|current|check."""

from __future__ import annotations

import click

from visualizador_emtp.cli.common import CliError, get_instance


def register(cli: click.Group) -> None:
    cli.add_command(db)


@click.group()
def db() -> None:
    """Base de datos de usuarios (users.db): migraciones y verificación."""


@db.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Aplica las migraciones pendientes (seguro de repetir)."""
    from visualizador_emtp import migrate

    inst = get_instance(ctx)
    before = _current(inst)
    try:
        inst.paths.data_dir.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(inst.db.engine, inst.settings.database_url)
    except Exception as exc:
        raise CliError(f"La migración falló: {exc}. La base de datos quedó en la revisión {before or 'vacía'}.") from None
    after = _current(inst)
    if before == after:
        click.echo(f"La base de datos ya estaba al día (revisión {after}).")
    else:
        click.echo(f"Base de datos migrada: {before or 'vacía'} → {after}.")


def _current(inst):
    from visualizador_emtp import migrate
    try:
        return migrate.current_revision(inst.db.engine)
    except Exception as exc:
        raise CliError(f"No se pudo abrir la base de datos {inst.settings.database_url.split('@')[-1]}: {exc}.") from None


@db.command()
@click.pass_context
def current(ctx: click.Context) -> None:
    """Muestra la revisión actual y la esperada."""
    from visualizador_emtp import migrate

    inst = get_instance(ctx)
    cur, head = _current(inst), migrate.head_revision()
    click.echo(f"Revisión actual: {cur or 'ninguna (base vacía)'}; revisión esperada: {head}.")


@db.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Verifica integridad y revisión de la base de datos (salida 0 si está sana)."""
    from visualizador_emtp.dbcheck import check_database

    inst = get_instance(ctx)
    problems = check_database(inst)
    if problems:
        for p in problems:
            click.echo(f"FAIL {p}")
        raise CliError("La base de datos tiene problemas (ver arriba).", 2)
    click.echo("OK La base de datos está íntegra y al día.")
