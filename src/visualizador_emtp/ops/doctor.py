"""emtp-admin doctor: the daily and weekly checks of the maintenance manual in one command.

Each check is a small function ``check_x(inst, ...) -> Check`` so it can be tested on its
own; ``run_all`` runs them in order and never lets one failure stop the others. Exit code:
0 all OK, 1 any WARN, 2 any FAIL. Thresholds live in ops/thresholds.py.
"""

from __future__ import annotations

import re
import shutil
import socket
import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from visualizador_emtp import migrate
from visualizador_emtp.dbcheck import sqlite_integrity
from visualizador_emtp.ops import thresholds as T
from visualizador_emtp.ops.service import (SERVICE_NAME, http_get, is_app_command, local_url, port_owners,
                                           systemctl_path, systemd_state)
from visualizador_emtp.fmt import human_size, miles
from visualizador_emtp.ops.util import short_problem
from visualizador_emtp.serving import split_bind

OK, WARN, FAIL = "OK", "WARN", "FAIL"
_RANK = {OK: 0, WARN: 1, FAIL: 2}


@dataclass
class Check:
    name: str
    status: str
    message: str

    def line(self) -> str:
        return f"{self.status:<4} {self.name:<20} {self.message}"


def exit_code(checks: list[Check]) -> int:
    return max((_RANK[c.status] for c in checks), default=0)


# --- service, web, port ---------------------------------------------------------------

def check_service(inst, systemctl: str | None = None, run_dir: Path | None = None) -> Check:
    exe = systemctl_path(systemctl, run_dir)
    if exe:
        state = systemd_state(exe)
        if state == "active":
            return Check("servicio", OK, f"{SERVICE_NAME} activo (systemd)")
        return Check("servicio", FAIL, f"{SERVICE_NAME} no está activo (systemctl is-active: {state}); "
                                       f"inícielo con 'sudo systemctl start {SERVICE_NAME}'")
    _, port = split_bind(inst.settings["server.bind"])
    owners = [o for o in port_owners(port) if is_app_command(o[1])]
    where = f"la aplicación atiende el puerto {port} (proceso {owners[0][0]})" if owners else \
        f"la aplicación no atiende el puerto {port}"
    return Check("servicio", WARN, f"systemd no está disponible en este equipo: no aplica la verificación "
                                   f"del servicio; {where}")


def check_login_page(inst, timeout: float = T.HTTP_TIMEOUT_SECONDS) -> Check:
    url = local_url(inst.settings["server.bind"], "/login")
    r = http_get(url, timeout)
    if r.status == 200:
        return Check("web_login", OK, f"{url} responde 200")
    if r.status is None:
        return Check("web_login", FAIL, f"{url} no responde ({r.error})")
    return Check("web_login", FAIL, f"{url} responde HTTP {r.status} (se espera 200)")


def check_healthz(inst, timeout: float = T.HTTP_TIMEOUT_SECONDS) -> Check:
    url = local_url(inst.settings["server.bind"], "/healthz")
    r = http_get(url, timeout)
    if r.status is None:
        return Check("healthz", FAIL, f"{url} no responde ({r.error})")
    body = r.json()
    status = body.get("status") if isinstance(body, dict) else None
    if r.status == 200 and status == "ok":
        return Check("healthz", OK, f"{url} responde 200 {{\"status\": \"ok\"}}")
    detail = ""
    if isinstance(body, dict):
        parts = []
        db = body.get("database") or {}
        if isinstance(db, dict) and (not db.get("reachable", True) or not db.get("at_head", True)):
            parts.append("base de datos inaccesible o sin migrar")
        data = body.get("data") or {}
        if isinstance(data, dict) and data.get("status") not in (None, "ok"):
            parts.append(f"datos: {data.get('message') or data.get('status')}")
        detail = "; ".join(parts)
    return Check("healthz", FAIL, f"{url} responde HTTP {r.status} status={status!r}" + (f" ({detail})" if detail else ""))


def _answers_as_app(inst) -> bool:
    """True when the port answers /healthz with this application's JSON (version + database)."""
    body = http_get(local_url(inst.settings["server.bind"], "/healthz"), T.HTTP_TIMEOUT_SECONDS).json()
    return isinstance(body, dict) and "version" in body and isinstance(body.get("database"), dict)


def _port_listening(port: int) -> bool:
    for host in ("127.0.0.1", "::1"):
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            continue
    return False


def check_port(inst) -> Check:
    _, port = split_bind(inst.settings["server.bind"])
    owners = port_owners(port)
    if not owners:
        if _port_listening(port):
            # the owner is hidden (another user's process under ProtectProc/hidepid): identify the app by
            # what it answers instead
            if _answers_as_app(inst):
                return Check("puerto", OK, f"el puerto {port} responde como Visualizador EMTP (/healthz); "
                                           "el proceso no es visible para este usuario")
            return Check("puerto", WARN, f"el puerto {port} está ocupado pero no se puede ver por quién ni "
                                         "responde como la aplicación (ejecute doctor con sudo)")
        return Check("puerto", FAIL, f"nadie escucha en el puerto {port}: la aplicación no está corriendo")
    foreign = [(pid, cmd) for pid, cmd in owners if not is_app_command(cmd)]
    if foreign:
        pid, cmd = foreign[0]
        return Check("puerto", FAIL, f"el puerto {port} lo ocupa otro programa: proceso {pid} ({cmd}); "
                                     "deténgalo o cambie server.bind")
    pids = ", ".join(str(pid) for pid, _ in owners[:4])
    return Check("puerto", OK, f"el puerto {port} lo atiende la aplicación (proceso {pids})")


# --- disk and logs ------------------------------------------------------------------------

def check_disk(inst, min_free: int = T.MIN_FREE_DISK_BYTES) -> Check:
    path = inst.home if inst.home.exists() else inst.home.parent
    usage = shutil.disk_usage(path)
    msg = f"{human_size(usage.free)} libres de {human_size(usage.total)} en el disco de {inst.home}"
    if usage.free < min_free:
        return Check("disco", WARN, msg + f" (mínimo {human_size(min_free)}); vea 'emtp-admin cleanup --dry-run'")
    return Check("disco", OK, msg)


_LOG_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})[,.]\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
_TAIL_BYTES = 64 * T.MB


def check_app_log_errors(inst, hours: int = T.APP_LOG_ERROR_WINDOW_HOURS, now: datetime | None = None) -> Check:
    log = inst.paths.app_log
    if not log.exists():
        return Check("errores_app_log", WARN, f"no existe {log}")
    since = (now or datetime.now()) - timedelta(hours=hours)
    count, latest = 0, ""
    with open(log, "rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - _TAIL_BYTES))
        for raw in f:
            m = _LOG_LINE.match(raw.decode("utf-8", errors="replace"))
            if not m or m.group(2) not in ("ERROR", "CRITICAL"):
                continue
            try:
                ts = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
            except ValueError:
                continue
            if ts >= since:
                count += 1
                latest = raw.decode("utf-8", errors="replace").strip()
    if count:
        return Check("errores_app_log", WARN, f"{miles(count)} línea(s) ERROR/CRITICAL en las últimas "
                                              f"{hours} h; la última: {latest[:200]}")
    return Check("errores_app_log", OK, f"sin ERROR/CRITICAL en las últimas {hours} h")


def check_app_log_size(inst, max_bytes: int = T.APP_LOG_MAX_BYTES) -> Check:
    log = inst.paths.app_log
    if not log.exists():
        return Check("tamano_app_log", WARN, f"no existe {log}")
    size = log.stat().st_size
    if size > max_bytes:
        return Check("tamano_app_log", WARN, f"app.log pesa {human_size(size)} (más de {human_size(max_bytes)}): "
                                             "revise la rotación (/etc/logrotate.d/visualizador-emtp)")
    return Check("tamano_app_log", OK, f"app.log pesa {human_size(size)}")


# --- users.db ---------------------------------------------------------------------------

def check_users_db_size(inst, max_bytes: int = T.USERS_DB_MAX_BYTES) -> Check:
    if not inst.settings.is_sqlite:
        return Check("tamano_users_db", OK, "PostgreSQL: no aplica")
    db = inst.paths.users_db
    if not db.exists():
        return Check("tamano_users_db", FAIL, f"no existe {db}")
    size = db.stat().st_size
    if size > max_bytes:
        return Check("tamano_users_db", WARN, f"users.db pesa {human_size(size)} (más de {human_size(max_bytes)}): "
                                              "revise 'emtp-admin db check'")
    return Check("tamano_users_db", OK, f"users.db pesa {human_size(size)}")


def check_users_db_integrity(inst) -> Check:
    if not inst.settings.is_sqlite:
        return Check("integridad_users_db", OK, "PostgreSQL: la integridad la garantiza el servidor")
    db = inst.paths.users_db
    result = sqlite_integrity(db, quick=True)
    if result == "ok":
        return Check("integridad_users_db", OK, f"{db} pasa quick_check")
    return Check("integridad_users_db", FAIL, f"{db} dañada: {short_problem(result)}. "
                                                  "Ejecute 'emtp-admin db recover'")


def _sqlite_revision(db: Path) -> str | None:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        try:
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return row[0] if row else None
    finally:
        con.close()


def check_migrations(inst) -> Check:
    head = migrate.head_revision()
    try:
        if inst.settings.is_sqlite:
            if not inst.paths.users_db.exists():
                return Check("migraciones", FAIL, f"no existe {inst.paths.users_db}")
            current = _sqlite_revision(inst.paths.users_db)
        else:
            current = migrate.current_revision(inst.db.engine)
    except Exception as exc:
        return Check("migraciones", FAIL, f"no se pudo leer la revisión: {exc}")
    if current == head:
        return Check("migraciones", OK, f"base de datos en la revisión {head}")
    return Check("migraciones", FAIL, f"base de datos en la revisión {current or 'vacía'}, se espera {head}: "
                                      "ejecute 'emtp-admin db upgrade'")


# --- data -------------------------------------------------------------------------------

def _parse_ts(value) -> datetime | None:
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _load_cube(inst):
    """(cube or None, error message or None, api_available)."""
    try:
        from visualizador_emtp.data.cube import DataUnavailable, get_cube
    except ImportError:
        return None, None, False
    try:
        return get_cube(inst.paths.processed_dir), None, True
    except DataUnavailable as exc:
        return None, str(exc), True


def _parquet_files(processed: Path) -> list[Path]:
    return sorted(processed.rglob("*.parquet")) if processed.is_dir() else []


def _version_time(version: str | None) -> datetime | None:
    """Version ids of the data store start with the UTC refresh time: 20250602T020000123Z-…"""
    m = re.match(r"^(\d{8}T\d{6})", version or "")
    if not m:
        return None
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)


def check_data_fresh(inst, max_age_days: int = T.DATA_MAX_AGE_DAYS, now: datetime | None = None) -> Check:
    now = now or datetime.now(timezone.utc)
    cube, error, api = _load_cube(inst)
    refreshed = None
    if api:
        if error:
            return Check("datos_actualizados", FAIL, f"los datos publicados no se pueden leer: {error}")
        if cube is None:
            return Check("datos_actualizados", FAIL, "no hay datos publicados: ejecute 'emtp-admin refresh' "
                                                     "(o 'emtp-admin demo-data' en pruebas)")
        manifest = getattr(cube, "manifest", None) or {}
        refreshed = (_parse_ts(manifest.get("created_at"))
                     or _version_time(getattr(cube, "version", None)))
    if refreshed is None:
        files = _parquet_files(inst.paths.processed_dir)
        if not files:
            return Check("datos_actualizados", FAIL, f"no hay archivos parquet en {inst.paths.processed_dir}")
        refreshed = datetime.fromtimestamp(max(f.stat().st_mtime for f in files), timezone.utc)
    days = (now - refreshed).total_seconds() / 86400
    when = refreshed.astimezone().strftime("%Y-%m-%d %H:%M")
    if days > max_age_days:
        return Check("datos_actualizados", WARN, f"última actualización exitosa {when} (hace {miles(days, 1)} días, "
                                                 f"más de {max_age_days}): revise logs/actualizacion_datos.log y "
                                                 "ejecute 'emtp-admin refresh'")
    return Check("datos_actualizados", OK, f"última actualización exitosa {when} (hace {miles(days, 1)} días)")


def check_parquet(inst) -> Check:
    cube, error, api = _load_cube(inst)
    if api:
        if error:
            return Check("parquet_legible", FAIL, f"datos ilegibles: {error}")
        if cube is None:
            return Check("parquet_legible", FAIL, "no hay datos publicados: ejecute 'emtp-admin refresh'")
        n = len((getattr(cube, "manifest", None) or {}).get("files", {}))
        return Check("parquet_legible", OK, f"versión {getattr(cube, 'version', '?')} legible "
                                            f"({miles(n)} archivo(s) verificados con sha256)")
    files = _parquet_files(inst.paths.processed_dir)
    if not files:
        return Check("parquet_legible", FAIL, f"no hay archivos parquet en {inst.paths.processed_dir}")
    import pyarrow.parquet as pq

    rows, bad = 0, []
    chosen = _current_files(inst, files)
    for f in chosen:
        try:
            pf = pq.ParquetFile(f)
            rows += pf.metadata.num_rows
            if pf.metadata.num_row_groups:
                pf.read_row_group(0)
        except Exception as exc:
            bad.append(f"{f.relative_to(inst.paths.processed_dir)} ({exc.__class__.__name__}: {str(exc)[:80]})")
    if bad:
        return Check("parquet_legible", FAIL, f"{len(bad)} archivo(s) parquet ilegible(s): {bad[0]}; "
                                              "ejecute 'emtp-admin refresh --rollback' o 'emtp-admin refresh'")
    return Check("parquet_legible", OK, f"{len(chosen)} archivo(s) parquet legibles ({miles(rows)} filas)")


def _current_files(inst, files: list[Path]) -> list[Path]:
    """Only the published version when the store names one (data/processed/current)."""
    processed = inst.paths.processed_dir
    current = processed / "current"
    try:
        if current.is_symlink() or current.is_dir():
            target = current.resolve()
            chosen = [f for f in files if target in f.resolve().parents]
            if chosen:
                return chosen
    except OSError:
        pass
    return files


# --- audit and backups ------------------------------------------------------------------

def check_failed_logins(inst, days: int = T.FAILED_LOGINS_WINDOW_DAYS, limit: int = T.FAILED_LOGINS_MAX,
                        now: datetime | None = None) -> Check:
    since = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    failures: Counter[str] = Counter()
    for rec in inst.audit.iter_records(include_rotated=True):
        if rec.get("event") != "login" or rec.get("success") is not False:
            continue
        ts = _parse_ts(rec.get("ts"))
        if ts is None or ts < since:
            continue
        failures[rec.get("target") or rec.get("actor") or "(sin usuario)"] += 1
    over = [(u, n) for u, n in failures.most_common() if n > limit]
    total = sum(failures.values())
    if over:
        who = ", ".join(f"{u}: {miles(n)}" for u, n in over[:5])
        return Check("logins_fallidos", WARN, f"más de {limit} intentos fallidos en {days} días — {who}; "
                                              "posible intento de acceso no autorizado")
    return Check("logins_fallidos", OK, f"{miles(total)} intento(s) fallido(s) en {days} días, ningún usuario "
                                        f"sobre {limit}")


def check_audit_chain(inst) -> Check:
    r = inst.audit.verify()
    if r.ok:
        return Check("cadena_auditoria", OK, f"{miles(r.lines)} líneas íntegras en {len(r.files)} archivo(s)")
    return Check("cadena_auditoria", FAIL, f"{len(r.problems)} problema(s); el primero: {r.problems[0]}. "
                                           "Vea 'emtp-admin audit verify'")


def check_last_backup(inst, max_age_hours: int = T.BACKUP_MAX_AGE_HOURS, now: datetime | None = None) -> Check:
    from visualizador_emtp.ops.backup import backup_dest, list_backups

    dest = backup_dest(inst.settings)
    backups = list_backups(dest)
    if not backups:
        return Check("ultimo_respaldo", WARN, f"no hay respaldos completos en {dest}: ejecute 'emtp-admin backup'")
    newest = backups[-1]
    age_h = ((now or datetime.now(timezone.utc)) - newest.created_at).total_seconds() / 3600
    msg = f"{newest.name} (hace {miles(age_h, 1)} h) en {dest}"
    if age_h > max_age_hours:
        return Check("ultimo_respaldo", WARN, msg + f": más de {max_age_hours} h; revise el respaldo diario")
    return Check("ultimo_respaldo", OK, msg)


CHECKS = (
    check_service, check_login_page, check_healthz, check_port, check_disk, check_app_log_errors,
    check_app_log_size, check_users_db_size, check_users_db_integrity, check_migrations,
    check_data_fresh, check_parquet, check_failed_logins, check_audit_chain, check_last_backup,
)


def run_all(inst) -> list[Check]:
    out = []
    for fn in CHECKS:
        name = fn.__name__.removeprefix("check_")
        try:
            out.append(fn(inst))
        except Exception as exc:  # one broken check never hides the others
            out.append(Check(name, FAIL, f"la verificación falló: {exc.__class__.__name__}: {exc}"))
    return out


def as_json(checks: list[Check]) -> dict:
    code = exit_code(checks)
    return {"status": {0: OK, 1: WARN, 2: FAIL}[code], "exit_code": code,
            "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "checks": [asdict(c) for c in checks]}

