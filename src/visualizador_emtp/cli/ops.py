"""emtp-admin backup [list], restore, archive, doctor, cleanup, maintenance log|show."""

from __future__ import annotations

import json
import sys
from collections import deque
from pathlib import Path

import click

from visualizador_emtp.fmt import miles

from visualizador_emtp.cli.common import CliError, get_instance, operator_name


def register(cli: click.Group) -> None:
    for cmd in (backup, restore, archive, doctor, cleanup, maintenance):
        cli.add_command(cmd)


# --- shared helpers ---------------------------------------------------------------------

def audit_event(inst, event: str, target: str = "", success: bool = True, detail=None) -> None:
    """Every sensitive action leaves an audit line; a failing audit never hides the result."""
    try:
        inst.audit.append(event, actor=f"cli:{operator_name()}", target=target, success=success,
                          ip="local", user_agent="emtp-admin", detail=detail)
    except OSError as exc:
        click.echo(f"Aviso: no se pudo escribir el evento de auditoría '{event}': {exc.strerror or exc}.", err=True)


def maintenance_line(inst, message: str, operator: str | None = None) -> None:
    from visualizador_emtp.ops.maintenance import append_maintenance_line
    try:
        append_maintenance_line(inst.paths, message, operator_name(operator))
    except OSError as exc:
        click.echo(f"Aviso: no se pudo escribir en {inst.paths.maintenance_log}: {exc.strerror or exc}.", err=True)


class ExitCode(click.ClickException):
    """Ends the command with an exit code and no extra message (the output already said it)."""

    def __init__(self, code: int):
        super().__init__("")
        self.exit_code = code

    def show(self, file=None) -> None:
        pass


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError("Se requiere confirmación: agregue --yes.")
    if not click.confirm(question, default=False):
        raise click.exceptions.Abort()


def _size(n: int) -> str:
    from visualizador_emtp.fmt import human_size
    return human_size(n)


# --- backup -----------------------------------------------------------------------------

@click.group(invoke_without_command=True)
@click.option("--dest", type=click.Path(file_okay=False), help="Carpeta de respaldos (por defecto backup.dest).")
@click.option("--include-secrets", is_flag=True,
              help="Incluye clave secreta y credenciales de SQL Server (guarde el respaldo en lugar seguro).")
@click.pass_context
def backup(ctx: click.Context, dest: str | None, include_secrets: bool) -> None:
    """Respaldo consistente y verificado de users.db, auditoría y configuración.

    Sin subcomando crea un respaldo; 'backup list' muestra los existentes.
    """
    ctx.ensure_object(dict)
    ctx.obj["backup_dest"] = dest
    if ctx.invoked_subcommand:
        return
    from visualizador_emtp.ops.backup import BackupError, backup_dest, create_backup

    inst = get_instance(ctx)
    target = backup_dest(inst.settings, dest)
    try:
        res = create_backup(inst, target, include_secrets=include_secrets)
    except BackupError as exc:
        audit_event(inst, "backup", str(target), False, {"error": str(exc)})
        maintenance_line(inst, f"Respaldo FALLIDO en {target}: {exc}")
        raise CliError(f"Respaldo fallido: {exc}") from None
    info = res.info
    m = info.manifest
    db = m.get("database") or {}
    click.echo(f"Respaldo creado: {info.path} ({_size(info.size)})")
    if db.get("engine") == "sqlite":
        tables = db.get("tables", {})
        click.echo(f"  users.db: {miles(tables.get('users', 0))} usuario(s), {miles(sum(tables.values()))} fila(s) "
                   f"en {len(tables)} tabla(s); integrity_check ok; revisión {db.get('revision')}")
    audit = m.get("audit") or {}
    click.echo(f"  audit.jsonl: {miles(audit.get('lines', 0))} línea(s), cadena "
               f"{'íntegra' if audit.get('chain_ok') else 'ROTA en el original'}")
    click.echo("  configuración: " + ("con secretos (clave secreta y credenciales; archivos 0600)"
                                      if include_secrets else "sin secretos (use --include-secrets para incluirlos)"))
    for w in res.warnings:
        click.echo(f"Aviso: {w}")
    if res.removed:
        click.echo(f"Retención {inst.settings['backup.retention_days']} días: se eliminaron {len(res.removed)} "
                   f"respaldo(s) antiguos ({_size(sum(s for _, s in res.removed))}).")
    audit_event(inst, "backup", info.name, True,
                {"dest": str(target), "size": info.size, "include_secrets": include_secrets,
                 "removed": [n for n, _ in res.removed]})
    maintenance_line(inst, f"Respaldo {info.name} creado en {target} ({_size(info.size)})")
    if not audit.get("chain_ok", True):
        raise CliError("El respaldo se guardó, pero la cadena de auditoría del original está rota.")


@backup.command("list")
@click.option("--verify", "full", is_flag=True, help="Verifica cada respaldo por completo (sumas sha256, SQLite, auditoría).")
@click.option("--dest", type=click.Path(file_okay=False), help="Carpeta de respaldos (por defecto backup.dest).")
@click.pass_context
def backup_list(ctx: click.Context, full: bool, dest: str | None) -> None:
    """Lista los respaldos completos (los interrumpidos nunca aparecen)."""
    from visualizador_emtp.ops.archive import list_archives
    from visualizador_emtp.ops.backup import BackupError, backup_dest, list_backups, verify_backup

    inst = get_instance(ctx)
    dest = backup_dest(inst.settings, dest or ctx.obj.get("backup_dest"))
    backups = list_backups(dest)
    if not backups:
        click.echo(f"No hay respaldos completos en {dest}.")
    else:
        click.echo(f"Respaldos en {dest}:")
        click.echo(f"  {'NOMBRE':<24} {'FECHA (local)':<17} {'TAMAÑO':>10}  {'USUARIOS':>8}  ESTADO")
        bad = 0
        for b in reversed(backups):
            state = "completo"
            if full:
                try:
                    verify_backup(b.path)
                    state = "verificado"
                except BackupError as exc:
                    state, bad = f"DAÑADO: {exc}", bad + 1
            users = (b.manifest.get("database") or {}).get("tables", {}).get("users")
            when = b.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
            click.echo(f"  {b.name:<24} {when:<17} {_size(b.size):>10}  "
                       f"{miles(users) if users is not None else '–':>8}  {state}")
        if bad:
            raise CliError(f"{bad} respaldo(s) dañado(s).")
    archives = list_archives(dest)
    if archives:
        click.echo("Archivos mensuales:")
        for a in reversed(archives):
            click.echo(f"  {a.name:<32} {_size(a.stat().st_size):>10}")


# --- restore ----------------------------------------------------------------------------

@click.command()
@click.argument("backup_ref", metavar="RESPALDO")
@click.option("--yes", is_flag=True, help="No pide confirmación.")
@click.option("--restart", is_flag=True, help="Detiene el servicio (systemd) antes y lo vuelve a iniciar después.")
@click.option("--dest", type=click.Path(file_okay=False), help="Carpeta de respaldos (por defecto backup.dest).")
@click.pass_context
def restore(ctx: click.Context, backup_ref: str, yes: bool, restart: bool, dest: str | None) -> None:
    """Restaura users.db y audit.jsonl desde un respaldo (nombre, ruta o 'latest').

    Verifica el respaldo antes de tocar nada y deja los archivos actuales a un lado
    (sufijo .pre-restore-FECHA) para poder deshacer.
    """
    from visualizador_emtp.ops.backup import BackupError, backup_dest, find_backup, verify_backup
    from visualizador_emtp.ops.restore import restore_backup
    from visualizador_emtp.ops.service import (SERVICE_NAME, service_state, start_service, systemctl_action,
                                               systemctl_path)

    inst = get_instance(ctx)
    target_dest = backup_dest(inst.settings, dest)
    try:
        path = find_backup(target_dest, backup_ref)
        info = verify_backup(path)
    except BackupError as exc:
        audit_event(inst, "restore", backup_ref, False, {"error": str(exc)})
        raise CliError(f"Restauración rechazada: {exc} No se modificó nada.", 2) from None
    click.echo(f"Respaldo {info.name} verificado (sumas sha256, integrity_check, cadena de auditoría).")

    state = service_state(inst.settings)
    stopped = False
    if state.running:
        exe = systemctl_path()
        if not restart:
            raise CliError(f"El servicio está en ejecución ({state.detail}). Deténgalo primero "
                           f"('sudo systemctl stop {SERVICE_NAME}') o use --restart. No se modificó nada.", 3)
        if state.how != "systemd" or not exe:
            raise CliError(f"El servicio está en ejecución ({state.detail}) y no hay systemd para detenerlo: "
                           "detenga ese proceso y repita. No se modificó nada.", 3)
    _confirm(yes, f"¿Restaurar {info.name}? Los archivos actuales quedarán con sufijo .pre-restore-…")
    if state.running:
        ok, out = systemctl_action(systemctl_path(), "stop")
        if not ok:
            raise CliError(f"No se pudo detener {SERVICE_NAME}: {out}. No se modificó nada.", 3)
        stopped = True
        click.echo(f"Servicio {SERVICE_NAME} detenido.")
    try:
        try:
            res = restore_backup(inst, path)
        except (BackupError, OSError) as exc:
            audit_event(inst, "restore", info.name, False, {"error": str(exc)})
            raise CliError(f"Restauración fallida: {exc}") from None
    finally:
        if stopped:
            ok, out = start_service(systemctl_path())
            click.echo(f"Servicio {SERVICE_NAME} " + ("iniciado." if ok else f"NO se pudo iniciar: {out}"))
    click.echo(f"Restaurado {info.name} (tomado el {info.created_at.astimezone():%Y-%m-%d %H:%M}).")
    if res.tables:
        click.echo(f"  users.db: {miles(res.tables.get('users', 0))} usuario(s); revisión {res.revision_after}")
    for f in res.moved_aside:
        click.echo(f"  archivo anterior guardado como {f}")
    for w in res.warnings:
        click.echo(f"Aviso: {w}")
    click.echo("Para deshacer: detenga el servicio y renombre los archivos .pre-restore-" + res.stamp +
               " a sus nombres originales.")
    audit_event(inst, "restore", info.name, True,
                {"backup": str(path), "aside": [str(f) for f in res.moved_aside],
                 "revision_before": res.revision_before, "revision_after": res.revision_after})
    maintenance_line(inst, f"Restauración desde {info.name} (anteriores: .pre-restore-{res.stamp})")


# --- archive ----------------------------------------------------------------------------

@click.command()
@click.option("--dest", type=click.Path(file_okay=False), help="Carpeta destino (por defecto backup.dest).")
@click.pass_context
def archive(ctx: click.Context, dest: str | None) -> None:
    """Archivo mensual de largo plazo backup_emtp_AAAAMM.tar.gz (data/ y logs/)."""
    from visualizador_emtp.ops.archive import create_archive
    from visualizador_emtp.ops.backup import BackupError, backup_dest

    inst = get_instance(ctx)
    target = backup_dest(inst.settings, dest)
    try:
        res = create_archive(inst, target)
    except BackupError as exc:
        audit_event(inst, "archive", str(target), False, {"error": str(exc)})
        maintenance_line(inst, f"Archivo mensual FALLIDO en {target}: {exc}")
        raise CliError(f"Archivo mensual fallido: {exc}") from None
    click.echo(f"Archivo mensual creado: {res.path} ({_size(res.size)}, {miles(res.members)} archivos)")
    if res.tables:
        click.echo(f"  users.db: copia consistente verificada ({miles(res.tables.get('users', 0))} usuario(s))")
    for w in res.warnings:
        click.echo(f"Aviso: {w}")
    if res.removed:
        click.echo(f"Retención {inst.settings['backup.archive_retention_months']} meses: se eliminaron "
                   + ", ".join(n for n, _ in res.removed) + ".")
    audit_event(inst, "archive", res.path.name, True, {"dest": str(target), "size": res.size,
                                                       "removed": [n for n, _ in res.removed]})
    maintenance_line(inst, f"Archivo mensual {res.path.name} creado en {target} ({_size(res.size)})")


# --- doctor -----------------------------------------------------------------------------

@click.command()
@click.option("--json", "as_json", is_flag=True, help="Salida JSON (monitoreo).")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Verificaciones diarias y semanales en un comando. Salida 0 todo OK, 1 algún WARN, 2 algún FAIL."""
    from visualizador_emtp.ops import doctor as d

    inst = get_instance(ctx)
    checks = d.run_all(inst)
    code = d.exit_code(checks)
    if as_json:
        click.echo(json.dumps(d.as_json(checks), ensure_ascii=False, indent=2))
    else:
        for c in checks:
            click.echo(c.line())
        counts = {s: sum(1 for c in checks if c.status == s) for s in (d.OK, d.WARN, d.FAIL)}
        click.echo(f"Resumen: {counts[d.OK]} OK, {counts[d.WARN]} WARN, {counts[d.FAIL]} FAIL "
                   f"(código de salida {code}).")
    if code:
        raise ExitCode(code)


# --- cleanup ----------------------------------------------------------------------------

_ACTION_TEXT = {
    "delete_log": "borrar log rotado antiguo",
    "gzip_audit": "comprimir auditoría rotada",
    "delete_backup": "borrar respaldo fuera de retención",
    "delete_archive": "borrar archivo mensual fuera de retención",
}


@click.command()
@click.option("--dry-run", is_flag=True, help="Solo muestra lo que haría y cuánto liberaría.")
@click.option("--dest", type=click.Path(file_okay=False), help="Carpeta de respaldos (por defecto backup.dest).")
@click.pass_context
def cleanup(ctx: click.Context, dry_run: bool, dest: str | None) -> None:
    """Libera espacio (disco lleno): logs rotados > 90 días, comprime auditoría rotada, poda respaldos."""
    from visualizador_emtp.ops.backup import backup_dest
    from visualizador_emtp.ops.cleanup import plan_and_run

    inst = get_instance(ctx)
    target = backup_dest(inst.settings, dest)
    res = plan_and_run(inst, target, dry_run=dry_run)
    verb = "Se haría" if dry_run else "Hecho"
    if not res.actions:
        click.echo("No hay nada que limpiar.")
    for a in res.actions:
        click.echo(f"  {verb}: {_ACTION_TEXT[a.kind]}: {a.path} ({_size(a.size)})")
    for e in res.errors:
        click.echo(f"Aviso: {e}")
    if res.actions:
        click.echo(("Se liberarían aprox. " if dry_run else "Liberados ") + _size(res.freed) + ".")
    if not dry_run and res.actions:
        audit_event(inst, "cleanup", str(inst.home), not res.errors,
                    {"actions": len(res.actions), "freed": res.freed, "errors": res.errors[:5]})
        maintenance_line(inst, f"Limpieza de disco: {len(res.actions)} acción(es), {_size(res.freed)} liberados")
    if res.errors:
        raise CliError("La limpieza terminó con avisos (ver arriba).")


# --- maintenance log --------------------------------------------------------------------

@click.group()
def maintenance() -> None:
    """Registro de mantenimiento (logs/MANTENIMIENTO.log)."""


@maintenance.command("log")
@click.argument("message", metavar="MENSAJE")
@click.option("--operator", help="Nombre de quien hizo el trabajo (por defecto SUDO_USER, USER o la cuenta que la ejecuta).")
@click.pass_context
def maintenance_log(ctx: click.Context, message: str, operator: str | None) -> None:
    """Agrega '[AAAA-MM-DD HH:MM] - MENSAJE - TI: operador' al registro."""
    from visualizador_emtp.ops.maintenance import append_maintenance_line

    if not message.strip():
        raise CliError("El mensaje está vacío.")
    inst = get_instance(ctx)
    try:
        line = append_maintenance_line(inst.paths, message, operator_name(operator))
    except OSError as exc:
        raise CliError(f"No se pudo escribir en {inst.paths.maintenance_log}: {exc.strerror or exc}.") from None
    click.echo(line)


@maintenance.command("show")
@click.option("--lines", "-n", type=click.IntRange(1, 100000), default=20, show_default=True,
              help="Cantidad de líneas finales a mostrar.")
@click.pass_context
def maintenance_show(ctx: click.Context, lines: int) -> None:
    """Muestra las últimas líneas del registro de mantenimiento."""
    inst = get_instance(ctx)
    path: Path = inst.paths.maintenance_log
    if not path.exists():
        click.echo(f"El registro {path} aún no tiene entradas.")
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in deque(f, maxlen=lines):
            click.echo(line.rstrip("\n"))
