"""emtp-admin demo-data | refresh | import-rds | test-connections.

Exit codes: 0 ok; 2 configuration or arguments; 3 another refresh is running; 4 invalid data
(nothing published); 5 row-count drop > 20 % refused (use --force); 6 source unreadable;
7 no previous version for --rollback; 10 ODBC driver missing; 11 host unreachable;
12 login failed; 13 timeout; 14 query failed.
"""

from __future__ import annotations

import click

from visualizador_emtp.cli.common import CliError, get_instance, operator_name


def register(cli: click.Group) -> None:
    cli.add_command(demo_data)
    cli.add_command(refresh)
    cli.add_command(import_rds)
    cli.add_command(test_connections)


def _print_result(res) -> None:
    from visualizador_emtp.fmt import miles, seconds

    if res.dry_run:
        click.echo(f"Simulación (--dry-run): {miles(res.rows)} registros válidos; no se publicó nada.")
    else:
        click.echo(f"✅ Actualización completada: {miles(res.rows)} registros procesados "
                   f"en {seconds(res.seconds)}. Versión publicada: {res.version}.")
    for y, n in sorted(res.years.items()):
        click.echo(f"  {y}: {miles(n)} registros")
    for note in res.notes:
        click.echo(f"  Nota: {note}")


def _run(inst, source, dry_run: bool, force: bool, verbose: bool = False):
    from visualizador_emtp.data.coerce import SourceError
    from visualizador_emtp.fmt import miles
    from visualizador_emtp.data.refresh import RefreshError, run_refresh

    try:
        res = run_refresh(inst, source, dry_run=dry_run, force=force, operator=operator_name(),
                          progress=(lambda m: click.echo(m, err=True)) if verbose else None)
    except RefreshError as exc:
        if exc.problems:
            click.echo(f"Filas con problemas ({miles(exc.bad_values)} valores inválidos; se muestran "
                       f"{min(len(exc.problems), 50)}):", err=True)
            for p in exc.problems[:50]:
                click.echo(f"  - {p.message()}", err=True)
        raise CliError(str(exc), exc.exit_code) from None
    except SourceError as exc:
        raise CliError(str(exc), exc.exit_code) from None
    _print_result(res)
    return res


@click.command("demo-data")
@click.option("--years", default="2015-2025", show_default=True, help="Años a generar: 2015-2025, 2024 o 2018,2020.")
@click.option("--seed", type=int, default=2025, show_default=True, help="Semilla (mismo valor = mismos datos).")
@click.option("--force", is_flag=True, help="Publica aunque haya menos filas por año que la versión vigente.")
@click.pass_context
def demo_data(ctx, years, seed, force):
    """Genera datos de demostración realistas y los publica como una actualización."""
    from visualizador_emtp.data.demo import DemoSource, parse_years

    inst = get_instance(ctx)
    try:
        ys = parse_years(years)
    except ValueError as exc:
        raise CliError(str(exc), 2) from None
    click.echo(f"Generando datos de demostración {ys[0]}–{ys[-1]} (semilla {seed})…")
    _run(inst, DemoSource(ys, seed), dry_run=False, force=force)


@click.command("refresh")
@click.option("--source", "kind", type=click.Choice(["sqlserver", "csv", "rds", "parquet"]), default=None,
              help="Fuente de datos (por defecto data.source de la configuración).")
@click.option("--path", "path", default=None, help="Archivo o carpeta de origen (csv, rds, parquet).")
@click.option("--dry-run", is_flag=True, help="Lee y valida sin publicar nada.")
@click.option("--force", is_flag=True, help="Publica aunque algún año caiga más de 20 % en filas.")
@click.option("--rollback", is_flag=True, help="Vuelve a la versión publicada anterior.")
@click.option("-v", "--verbose", is_flag=True, help="Muestra el avance.")
@click.pass_context
def refresh(ctx, kind, path, dry_run, force, rollback, verbose):
    """Actualiza los datos: lee la fuente, valida, publica una versión nueva de forma atómica."""
    from visualizador_emtp.data.coerce import SourceError
    from visualizador_emtp.data.refresh import RefreshError, rollback as do_rollback
    from visualizador_emtp.data.sources import make_source

    inst = get_instance(ctx)
    if rollback:
        if kind or path or dry_run or force:
            raise CliError("--rollback no se combina con --source, --path, --dry-run ni --force.", 2)
        try:
            old, new = do_rollback(inst, operator_name())
        except RefreshError as exc:
            raise CliError(str(exc), exc.exit_code) from None
        click.echo(f"✅ Datos revertidos a la versión {new} (antes: {old}).")
        return
    try:
        source = make_source(inst.settings, kind, path)
    except SourceError as exc:
        raise CliError(str(exc), exc.exit_code) from None
    click.echo(f"Actualizando desde {source.describe()}…")
    _run(inst, source, dry_run, force, verbose)


@click.command("import-rds")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--dry-run", is_flag=True, help="Lee y valida sin publicar nada.")
@click.option("--force", is_flag=True, help="Publica aunque algún año caiga más de 20 % en filas.")
@click.pass_context
def import_rds(ctx, file, dry_run, force):
    """Importa un extracto de R (.rds o .RData) y lo publica como una actualización."""
    from visualizador_emtp.data.coerce import SourceError
    from visualizador_emtp.data.sources.rds import RdsSource

    inst = get_instance(ctx)
    try:
        source = RdsSource(file)
    except SourceError as exc:
        raise CliError(str(exc), exc.exit_code) from None
    click.echo(f"Importando {file}…")
    _run(inst, source, dry_run, force)


@click.command("test-connections")
@click.pass_context
def test_connections(ctx):
    """Prueba la conexión a SQL Server: drivers ODBC, conexión y una consulta trivial."""
    import pyodbc

    from visualizador_emtp.data.coerce import SourceError
    from visualizador_emtp.fmt import miles
    from visualizador_emtp.data.sources import sqlserver as sq

    inst = get_instance(ctx)
    s = inst.settings
    drivers = pyodbc.drivers()
    click.echo("Drivers ODBC instalados: " + (", ".join(drivers) if drivers else "ninguno"))
    driver = sq.configured_driver(s)
    if driver:
        if driver not in drivers:
            raise CliError(f"El driver configurado '{driver}' no está instalado (instale tdsodbc para FreeTDS "
                           f"o msodbcsql18 para 'ODBC Driver 18 for SQL Server').", sq.EXIT_DRIVER)
        click.echo(f"Driver configurado: {driver} (instalado)")
    else:
        click.echo(f"DSN configurado: {s['sqlserver.dsn'] or '(en la cadena de conexión)'}")
    try:
        click.echo("Conexión: " + sq.connection_string(s, with_credentials=False))
        r = sq.test_connection(s)
    except SourceError as exc:
        raise CliError(str(exc), exc.exit_code) from None
    click.echo(f"✅ Conexión correcta: conectar {miles(r['connect_s'] * 1000, 0)} ms, "
               f"SELECT 1 {miles(r['query_s'] * 1000, 1)} ms.")
