"""emtp-admin db upgrade|current|check|recover."""

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


@db.command()
@click.option("--yes", is_flag=True, help="No pide confirmación.")
@click.option("--force", is_flag=True, help="Reconstruye aunque la base parezca íntegra.")
@click.pass_context
def recover(ctx: click.Context, yes: bool, force: bool) -> None:
    """Recupera una users.db dañada ("database disk image is malformed").

    Guarda el archivo dañado a un lado (users.db.damaged-FECHA), recupera las filas
    legibles, verifica y reemplaza. Si no se puede, indica el respaldo válido más
    reciente y el comando exacto para restaurarlo.
    """
    from visualizador_emtp.cli.ops import _confirm, audit_event, maintenance_line
    from visualizador_emtp.dbcheck import sqlite_integrity
    from visualizador_emtp.ops.backup import BackupError, backup_dest, list_backups, verify_backup
    from visualizador_emtp.ops.recover import RecoverError, recover_database
    from visualizador_emtp.ops.service import SERVICE_NAME, service_state
    from visualizador_emtp.fmt import miles
    from visualizador_emtp.ops.util import short_problem

    inst = get_instance(ctx)
    if not inst.settings.is_sqlite:
        raise CliError("La base de usuarios está en PostgreSQL: 'db recover' solo aplica a SQLite.")
    db_file = inst.paths.users_db
    if not db_file.exists():
        raise CliError(f"No existe {db_file}: restaure un respaldo con 'emtp-admin restore latest --yes' "
                       "o cree una base nueva con 'emtp-admin init'.")
    status = sqlite_integrity(db_file, quick=False)
    if status == "ok" and not force:
        click.echo(f"{db_file} pasa integrity_check: no hay nada que recuperar (use --force para reconstruirla igual).")
        return
    click.echo(f"{db_file}: {short_problem(status)}")
    state = service_state(inst.settings)
    if state.running:
        raise CliError(f"El servicio está en ejecución ({state.detail}). Deténgalo primero "
                       f"('sudo systemctl stop {SERVICE_NAME}'). No se modificó nada.", 3)
    _confirm(yes, "¿Recuperar la base de datos? El archivo dañado quedará guardado a un lado.")
    try:
        res = recover_database(inst)
    except RecoverError as exc:
        audit_event(inst, "db_recover", str(db_file), False, {"error": str(exc)})
        maintenance_line(inst, f"Recuperación de users.db FALLIDA: {exc}")
        click.echo(f"No se pudo recuperar la base: {exc}. {db_file} quedó como estaba.", err=True)
        dest = backup_dest(inst.settings)
        for b in reversed(list_backups(dest)):
            try:
                verify_backup(b.path)
            except BackupError:
                continue
            click.echo(f"Respaldo válido más reciente: {b.name} ({b.created_at.astimezone():%Y-%m-%d %H:%M}).", err=True)
            click.echo(f"Restáurelo con: emtp-admin restore {b.name} --yes", err=True)
            break
        else:
            click.echo(f"No hay respaldos válidos en {dest}.", err=True)
        raise CliError("Recuperación fallida.", 2) from None
    click.echo(f"Base recuperada con {res.method}. Archivo dañado guardado como {res.damaged_copy}.")
    click.echo(f"  {'TABLA':<20} {'RECUPERADAS':>12} {'LEGIBLES ANTES':>15}")
    for table, n in sorted(res.tables_after.items()):
        before = res.tables_before.get(table)
        click.echo(f"  {table:<20} {miles(n):>12} {miles(before) if before is not None else 'ilegible':>15}")
    for w in res.warnings:
        click.echo(f"Aviso: {w}")
    after = sqlite_integrity(db_file, quick=False)
    click.echo(f"integrity_check de la base recuperada: {after}.")
    audit_event(inst, "db_recover", str(db_file), True,
                {"damaged_copy": str(res.damaged_copy), "method": res.method, "tables": res.tables_after})
    maintenance_line(inst, f"Recuperación de users.db ({res.method}); dañada guardada como {res.damaged_copy.name}")
