"""emtp-admin cleanup: free disk space safely (the "disk full" emergency).

* rotated logs (app.log.3.gz, actualizacion_datos.log.2, …) older than 90 days are deleted;
  live logs and audit files are never deleted;
* rotated audit files audit.jsonl.N not yet compressed (N ≥ 2: logrotate's delaycompress
  leaves .1 plain on purpose) are gzipped — atomically, keeping their mtime; the audit
  chain verifies the same on .gz files;
* backups past backup.retention_days and monthly archives past
  backup.archive_retention_months are deleted (the newest backup is always kept).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from visualizador_emtp.ops.archive import apply_archive_retention
from visualizador_emtp.ops.backup import apply_retention, dest_lock
from visualizador_emtp.ops.thresholds import ROTATED_LOG_MAX_DAYS
from visualizador_emtp.ops.util import fsync_dir, fsync_file

ROTATED_LOG_RE = re.compile(r"^.+\.log(\.\d+(\.gz)?|[-_.]\d{8}.*|\.old|\.gz)$")
AUDIT_ROTATED_RE = re.compile(r"^audit\.jsonl\.(\d+)$")


@dataclass
class Action:
    kind: str          # 'delete_log', 'gzip_audit', 'delete_backup', 'delete_archive'
    path: str
    size: int          # bytes freed (for gzip: estimated until done)
    done: bool = False


@dataclass
class CleanupResult:
    actions: list[Action] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(a.size for a in self.actions)


def _gzip_atomic(path: Path) -> int:
    """path → path.gz; returns bytes freed. The .gz appears complete or not at all."""
    final = path.with_name(path.name + ".gz")
    tmp = path.with_name(f".{path.name}.gz.tmp")
    st = path.stat()
    with open(path, "rb") as fin, open(tmp, "wb") as raw:
        with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, mtime=int(st.st_mtime)) as gz:
            shutil.copyfileobj(fin, gz, 1 << 20)
    fsync_file(tmp)
    os.chmod(tmp, st.st_mode & 0o777)
    os.utime(tmp, (st.st_atime, st.st_mtime))
    os.replace(tmp, final)
    fsync_dir(path.parent)
    path.unlink()
    return st.st_size - final.stat().st_size


def plan_and_run(inst, dest: Path, dry_run: bool = False, now: float | None = None,
                 log_max_days: int = ROTATED_LOG_MAX_DAYS) -> CleanupResult:
    now = now or time.time()
    p = inst.paths
    res = CleanupResult()
    live = {p.app_log.name, p.audit_log.name, p.refresh_log.name, p.maintenance_log.name}
    if p.logs_dir.is_dir():
        for f in sorted(p.logs_dir.iterdir()):
            if not f.is_file() or f.name in live or f.name.startswith("audit.jsonl"):
                continue
            if ROTATED_LOG_RE.match(f.name) and now - f.stat().st_mtime > log_max_days * 86400:
                a = Action("delete_log", str(f), f.stat().st_size)
                if not dry_run:
                    try:
                        f.unlink()
                        a.done = True
                    except OSError as exc:
                        res.errors.append(f"No se pudo borrar {f}: {exc.strerror}")
                        continue
                res.actions.append(a)
        for f in sorted(p.logs_dir.iterdir()):
            m = AUDIT_ROTATED_RE.match(f.name)
            if not m or int(m.group(1)) < 2 or not f.is_file():
                continue
            if (f.with_name(f.name + ".gz")).exists():
                res.errors.append(f"Existen {f.name} y {f.name}.gz: revíselos a mano (no se tocó ninguno).")
                continue
            size = f.stat().st_size
            a = Action("gzip_audit", str(f), int(size * 0.85))
            if not dry_run:
                try:
                    a.size = _gzip_atomic(f)
                    a.done = True
                except OSError as exc:
                    res.errors.append(f"No se pudo comprimir {f}: {exc.strerror or exc}")
                    continue
            res.actions.append(a)
    if dest.is_dir():
        with dest_lock(dest):
            for name, size in apply_retention(dest, inst.settings["backup.retention_days"], dry_run=dry_run):
                res.actions.append(Action("delete_backup", str(dest / name), size, not dry_run))
            for name, size in apply_archive_retention(dest, inst.settings["backup.archive_retention_months"],
                                                      dry_run=dry_run):
                res.actions.append(Action("delete_archive", str(dest / name), size, not dry_run))
    return res
