"""emtp-admin backup: consistent, verified, atomic backups with retention.

A backup is a folder ``emtp_YYYYMMDD-HHMMSS`` in backup.dest holding users.db (an
online-backup snapshot), audit.jsonl (+ the newest rotated audit file and the
audit.head anchor), the configuration (secrets only with --include-secrets) and
MANIFEST.json with sha256 sums. It is built in a hidden ``.tmp-…`` folder inside
dest, every file fsynced, and renamed to its final name only when complete and
verified: an interruption at any point leaves nothing that lists as a backup.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from visualizador_emtp import __version__
from visualizador_emtp.audit.chain import AuditLog, rotated_files
from visualizador_emtp.ops.snapshot import SnapshotError, snapshot_sqlite, verify_sqlite_copy
from visualizador_emtp.ops.util import (copy_durable, crash_point, fsync_dir, remove_tree, sha256_file,
                                        tree_size, write_durable)

PREFIX = "emtp_"
NAME_RE = re.compile(r"^emtp_(\d{8}-\d{6})(?:_(\d+))?$")
MANIFEST = "MANIFEST.json"
MANIFEST_KIND = "visualizador-emtp-backup"
LOCK_NAME = ".backup.lock"
TMP_PREFIX = ".tmp-"
LOCK_WAIT_SECONDS = 120


class BackupError(Exception):
    """A backup or verification failure, one Spanish line."""


@dataclass
class BackupInfo:
    path: Path
    manifest: dict

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.manifest["created_at"].replace("Z", "+00:00"))

    @property
    def size(self) -> int:
        return tree_size(self.path)

    @property
    def has_database(self) -> bool:
        return "users.db" in self.manifest.get("files", {})


@dataclass
class BackupResult:
    info: BackupInfo
    warnings: list[str] = field(default_factory=list)
    removed: list[tuple[str, int]] = field(default_factory=list)


def backup_dest(settings, override: str | os.PathLike | None = None) -> Path:
    return Path(override).expanduser().resolve() if override else settings.home_path("backup.dest")


@contextmanager
def dest_lock(dest: Path, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """One backup/retention/restore-listing writer per destination at a time."""
    fd = os.open(dest / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BackupError(f"Otro respaldo está en curso en {dest} (se esperó {int(wait)} s).") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _redact_config(text: str) -> str:
    """Hide passwords inside database URLs (postgresql://user:PASSWORD@host)."""
    return re.sub(r"(://[^:/@\s\"']+:)[^@\s\"']+@", r"\1***@", text)


def read_manifest(path: Path) -> dict | None:
    """The manifest of a backup folder when it is complete, else None."""
    try:
        m = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or m.get("kind") != MANIFEST_KIND or not isinstance(m.get("files"), dict):
        return None
    try:
        datetime.fromisoformat(str(m["created_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    for rel, meta in m["files"].items():
        f = path / rel
        try:
            if not f.is_file() or f.stat().st_size != meta["size"]:
                return None
        except (OSError, KeyError, TypeError):
            return None
    return m


def list_backups(dest: Path) -> list[BackupInfo]:
    """Complete backups (valid manifest, every listed file present), oldest first."""
    out = []
    if not dest.is_dir():
        return out
    for p in dest.iterdir():
        if not NAME_RE.match(p.name) or not p.is_dir():
            continue
        m = read_manifest(p)
        if m is not None:
            out.append(BackupInfo(p, m))
    out.sort(key=lambda b: (b.created_at, b.name))
    return out


def find_backup(dest: Path, ref: str) -> Path:
    """A backup named in dest, or a path to a backup folder."""
    candidate = Path(ref).expanduser()
    if candidate.is_dir():
        return candidate.resolve()
    if NAME_RE.match(ref) and (dest / ref).is_dir():
        return dest / ref
    if ref == "latest":
        backups = list_backups(dest)
        if backups:
            return backups[-1].path
    raise BackupError(f"No existe el respaldo '{ref}' (ni como carpeta ni en {dest}). "
                      "Vea los disponibles con 'emtp-admin backup list'.")


def verify_backup(path: Path) -> BackupInfo:
    """Full verification before any use: manifest, sha256 of every file, SQLite integrity and
    row counts, audit chain. Raises BackupError naming the first problem."""
    if not NAME_RE.match(path.name):
        raise BackupError(f"{path} no es un respaldo de Visualizador EMTP (nombre inesperado).")
    m = read_manifest(path)
    if m is None:
        raise BackupError(f"El respaldo {path.name} está incompleto o su MANIFEST.json no es válido.")
    for rel, meta in m["files"].items():
        if sha256_file(path / rel) != meta.get("sha256"):
            raise BackupError(f"El respaldo {path.name} está dañado: {rel} no coincide con su suma sha256.")
    db = m.get("database") or {}
    if "users.db" in m["files"]:
        try:
            verify_sqlite_copy(path / "users.db", db.get("tables"))
        except SnapshotError as exc:
            raise BackupError(f"El respaldo {path.name} está dañado: {exc}") from None
    audit = m.get("audit") or {}
    if "audit.jsonl" in m["files"] and audit.get("chain_ok"):
        result = AuditLog(path / "audit.jsonl", path).verify()
        if not result.ok:
            raise BackupError(f"El respaldo {path.name} está dañado: la cadena de auditoría no verifica "
                              f"({result.problems[0]}).")
    return BackupInfo(path, m)


def _copy_audit(inst, tmp: Path) -> list[str]:
    """audit.jsonl, its newest rotated file and audit.head, copied under the audit lock so no
    half-written line and no head/line mismatch is captured."""
    audit = inst.audit
    copied = []
    with audit.locked():
        if audit.path.exists():
            copy_durable(audit.path, tmp / "audit.jsonl", 0o640)
            copied.append("audit.jsonl")
            rotated = rotated_files(audit.path)
            if rotated:
                newest = rotated[-1]
                copy_durable(newest, tmp / newest.name, 0o640)
                copied.append(newest.name)
        if audit.head_path.exists():
            copy_durable(audit.head_path, tmp / "audit.head", 0o640)
            copied.append("audit.head")
    return copied


def _copy_config(inst, tmp: Path, include_secrets: bool) -> list[str]:
    p = inst.paths
    copied = []
    (tmp / "config").mkdir(mode=0o750)
    if p.config_file.exists():
        text = p.config_file.read_text(encoding="utf-8")
        if not include_secrets:
            text = _redact_config(text)
        write_durable(tmp / "config" / p.config_file.name, text.encode("utf-8"), 0o640)
        copied.append(f"config/{p.config_file.name}")
    if include_secrets:
        secrets = [p.secret_key_file, inst.settings.home_path("sqlserver.credentials_file")]
        for f in secrets:
            if f.is_file():
                copy_durable(f, tmp / "config" / f.name, 0o600)
                copied.append(f"config/{f.name}")
    return copied


def _new_name(dest: Path, now: datetime) -> str:
    base = PREFIX + now.strftime("%Y%m%d-%H%M%S")
    name, n = base, 1
    while (dest / name).exists():
        n += 1
        name = f"{base}_{n}"
    return name


def _clean_leftovers(dest: Path) -> None:
    """Temp folders of interrupted backups (we hold the lock, so none is in progress)."""
    for p in dest.iterdir():
        if p.name.startswith((TMP_PREFIX, ".del-")) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


def apply_retention(dest: Path, days: int, dry_run: bool = False, now: datetime | None = None
                    ) -> list[tuple[str, int]]:
    """Delete complete backups older than ``days``; the newest one is always kept."""
    now = now or _utcnow()
    backups = list_backups(dest)
    limit = now - timedelta(days=days)
    removed = []
    for b in backups[:-1]:
        if b.created_at < limit:
            size = b.size
            if not dry_run:
                remove_tree(b.path)
            removed.append((b.name, size))
    return removed


def create_backup(inst, dest: Path, include_secrets: bool = False, retention_days: int | None = None
                  ) -> BackupResult:
    settings = inst.settings
    warnings: list[str] = []
    try:
        dest.mkdir(parents=True, exist_ok=True, mode=0o750)
    except OSError as exc:
        raise BackupError(f"No se pudo crear la carpeta de respaldos {dest}: {exc.strerror or exc}.") from None
    if not os.access(dest, os.W_OK):
        raise BackupError(f"Sin permiso de escritura en la carpeta de respaldos {dest}.")
    with dest_lock(dest):
        _clean_leftovers(dest)
        now = _utcnow()
        name = _new_name(dest, now)
        tmp = dest / f"{TMP_PREFIX}{name}"
        tmp.mkdir(mode=0o750)
        try:
            crash_point("tmpdir")
            manifest: dict = {
                "kind": MANIFEST_KIND, "format": 1, "name": name,
                "created_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "hostname": socket.gethostname(), "version": __version__, "home": str(inst.home),
                "include_secrets": bool(include_secrets),
            }
            if settings.is_sqlite:
                try:
                    manifest["database"] = {"engine": "sqlite", **snapshot_sqlite(
                        inst.paths.users_db, tmp / "users.db", settings["database.busy_timeout_ms"] / 1000 + 15)}
                except SnapshotError as exc:
                    raise BackupError(str(exc)) from None
            else:
                manifest["database"] = {"engine": "postgresql", "note": "respaldar con pg_dump"}
                warnings.append("La base de usuarios está en PostgreSQL: este respaldo NO la incluye. "
                                "Respáldela con pg_dump (p. ej. 'pg_dump -Fc -f users.dump BASE'); "
                                "se respaldan auditoría y configuración.")
            crash_point("db")
            _copy_audit(inst, tmp)
            crash_point("audit")
            _copy_config(inst, tmp, include_secrets)
            # verify the audit copy
            audit_result = AuditLog(tmp / "audit.jsonl", tmp).verify()
            manifest["audit"] = {"lines": audit_result.lines, "chain_ok": audit_result.ok,
                                 "problems": audit_result.problems[:5]}
            if not audit_result.ok:
                live = inst.audit.verify()
                if live.ok:
                    raise BackupError("La copia del registro de auditoría no verifica "
                                      f"({audit_result.problems[0]}); el respaldo se descartó.")
                warnings.append("La cadena de auditoría ya estaba rota en el original "
                                f"({live.problems[0]}); se respaldó igual. Revise 'emtp-admin audit verify'.")
            files = {}
            for f in sorted(tmp.rglob("*")):
                if f.is_file():
                    rel = f.relative_to(tmp).as_posix()
                    files[rel] = {"sha256": sha256_file(f), "size": f.stat().st_size}
            manifest["files"] = files
            crash_point("manifest")
            write_durable(tmp / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8"))
            fsync_dir(tmp / "config")
            fsync_dir(tmp)
            crash_point("rename")
            final = dest / name
            os.rename(tmp, final)
            fsync_dir(dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        crash_point("retention")
        try:
            info = verify_backup(final)
        except BackupError:
            remove_tree(final)
            raise
        removed = apply_retention(dest, retention_days or settings["backup.retention_days"])
    return BackupResult(info=info, warnings=warnings, removed=removed)
