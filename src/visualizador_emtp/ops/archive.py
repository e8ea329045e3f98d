"""emtp-admin archive: the monthly long-term archive backup_emtp_YYYYMM.tar.gz.

data/ and logs/ of the home, with a consistent snapshot of users.db in place of the
live file (and without its -wal/-shm or lock files) and audit.jsonl copied under the
audit lock. Written to a hidden temp file in the destination, fsynced, verified and
renamed: an interrupted archive never has the final name.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from visualizador_emtp.ops.backup import BackupError, dest_lock
from visualizador_emtp.ops.snapshot import SnapshotError, snapshot_sqlite, verify_sqlite_copy
from visualizador_emtp.ops.util import copy_durable, crash_point, fsync_dir, fsync_file

ARCHIVE_RE = re.compile(r"^backup_emtp_(\d{4})(\d{2})\.tar\.gz$")
SKIP_SUFFIXES = ("-wal", "-shm", "-journal", ".lock")


@dataclass
class ArchiveResult:
    path: Path
    size: int
    members: int
    tables: dict[str, int]
    removed: list[tuple[str, int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def archive_name(month: datetime) -> str:
    return f"backup_emtp_{month:%Y%m}.tar.gz"


def list_archives(dest: Path) -> list[Path]:
    if not dest.is_dir():
        return []
    return sorted(p for p in dest.iterdir() if ARCHIVE_RE.match(p.name) and p.is_file())


def _month_index(year: int, month: int) -> int:
    return year * 12 + (month - 1)


def apply_archive_retention(dest: Path, months: int, now: datetime | None = None, dry_run: bool = False
                            ) -> list[tuple[str, int]]:
    """Delete archives of months older than ``months`` months before the current one."""
    now = now or datetime.now()
    current = _month_index(now.year, now.month)
    removed = []
    for p in list_archives(dest):
        m = ARCHIVE_RE.match(p.name)
        if current - _month_index(int(m.group(1)), int(m.group(2))) >= months:
            size = p.stat().st_size
            if not dry_run:
                p.unlink()
            removed.append((p.name, size))
    return removed


def _skip(path: Path, inst) -> bool:
    p = inst.paths
    if path.name.endswith(SKIP_SUFFIXES) or path.name.startswith(".users.db"):
        return True
    if path == p.users_db or path == p.audit_log:
        return True  # added from consistent copies
    return False


def create_archive(inst, dest: Path, now: datetime | None = None, retention_months: int | None = None
                   ) -> ArchiveResult:
    now = now or datetime.now()
    p = inst.paths
    warnings: list[str] = []
    try:
        dest.mkdir(parents=True, exist_ok=True, mode=0o750)
    except OSError as exc:
        raise BackupError(f"No se pudo crear la carpeta {dest}: {exc.strerror or exc}.") from None
    name = archive_name(now)
    final = dest / name
    with dest_lock(dest):
        for old in dest.glob(".tmp-backup_emtp_*"):
            old.unlink(missing_ok=True)
        for old in dest.glob(".archive-*"):
            shutil.rmtree(old, ignore_errors=True)
        tmp_archive = dest / f".tmp-{name}"
        with tempfile.TemporaryDirectory(prefix=".archive-", dir=dest) as work:
            work_dir = Path(work)
            tables: dict[str, int] = {}
            try:
                if inst.settings.is_sqlite and p.users_db.exists():
                    info = snapshot_sqlite(p.users_db, work_dir / "users.db",
                                           inst.settings["database.busy_timeout_ms"] / 1000 + 15)
                    tables = info["tables"]
                elif not inst.settings.is_sqlite:
                    warnings.append("La base de usuarios está en PostgreSQL: respáldela con pg_dump; "
                                    "el archivo incluye data/ y logs/ sin ella.")
                with inst.audit.locked():
                    if p.audit_log.exists():
                        copy_durable(p.audit_log, work_dir / "audit.jsonl")
            except SnapshotError as exc:
                raise BackupError(str(exc)) from None
            crash_point("archive_snapshot")
            members = 0
            try:
                with tarfile.open(tmp_archive, "w:gz", compresslevel=6) as tar:
                    for root_name, root in (("data", p.data_dir), ("logs", p.logs_dir)):
                        if not root.exists():
                            continue
                        tar.add(root, arcname=root_name, recursive=False)
                        for f in sorted(root.rglob("*")):
                            if _skip(f, inst) or not (f.is_file() or f.is_dir()):
                                continue
                            tar.add(f, arcname=f"{root_name}/{f.relative_to(root).as_posix()}", recursive=False)
                            members += 1
                    if (work_dir / "users.db").exists():
                        tar.add(work_dir / "users.db", arcname="data/users.db")
                        members += 1
                    if (work_dir / "audit.jsonl").exists():
                        tar.add(work_dir / "audit.jsonl", arcname="logs/audit.jsonl")
                        members += 1
                crash_point("archive_written")
                fsync_file(tmp_archive)
                _verify_archive(tmp_archive, tables if (work_dir / "users.db").exists() else None, work_dir)
                os.chmod(tmp_archive, 0o640)
                os.replace(tmp_archive, final)
                fsync_dir(dest)
            except BaseException:
                tmp_archive.unlink(missing_ok=True)
                raise
        removed = apply_archive_retention(dest, retention_months or inst.settings["backup.archive_retention_months"],
                                          now=now)
    return ArchiveResult(final, final.stat().st_size, members, tables, removed, warnings)


def _verify_archive(path: Path, tables: dict[str, int] | None, work_dir: Path) -> None:
    """Read the whole archive back; the users.db inside must pass integrity_check with the
    snapshot's row counts."""
    check_dir = work_dir / "check"
    check_dir.mkdir()
    try:
        with tarfile.open(path, "r:gz") as tar:
            names = tar.getnames()
            for member in tar:
                if member.isfile():
                    f = tar.extractfile(member)
                    while f.read(1 << 20):
                        pass
            if tables is not None:
                if "data/users.db" not in names:
                    raise BackupError(f"El archivo {path.name} no contiene data/users.db.")
                member = tar.getmember("data/users.db")
                with tar.extractfile(member) as src, open(check_dir / "users.db", "wb") as out:
                    shutil.copyfileobj(src, out)
                try:
                    verify_sqlite_copy(check_dir / "users.db", tables)
                except SnapshotError as exc:
                    raise BackupError(f"El archivo mensual no verifica: {exc}") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"El archivo mensual no se pudo leer de vuelta: {exc}.") from None
