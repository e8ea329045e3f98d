"""emtp-admin restore: put a verified backup's users.db and audit.jsonl back in place.

The backup is verified completely before anything is touched. The new files are first
staged beside their destination (same filesystem) and fsynced; then the current files
are renamed aside (``users.db.pre-restore-<ts>``, ``audit.jsonl.pre-restore-<ts>``) so
the restore can be undone, and the staged files renamed into place. Any failure in
between puts the original files back.

Rotated audit files (``audit.jsonl.1`` …) written after the backup belong to the period
the restore rolls back: they are renamed aside too, so the restored audit.jsonl continues
the chain of the rotated files that precede it and ``audit verify`` stays clean.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from visualizador_emtp import migrate
from visualizador_emtp.audit.chain import GENESIS, first_prev, last_hash, rotated_after, rotated_files
from visualizador_emtp.ops.backup import BackupError, BackupInfo, verify_backup
from visualizador_emtp.ops.snapshot import SnapshotError, verify_sqlite_copy
from visualizador_emtp.ops.util import copy_durable, crash_point, fsync_dir

ASIDE = "pre-restore"


@dataclass
class RestoreResult:
    backup: BackupInfo
    stamp: str
    moved_aside: list[Path] = field(default_factory=list)
    revision_before: str | None = None
    revision_after: str | None = None
    tables: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def aside_name(path: Path, stamp: str) -> Path:
    """users.db → users.db.pre-restore-<ts>; users.db-wal → users.db.pre-restore-<ts>-wal, so
    SQLite still pairs the moved database with its WAL."""
    for suffix in ("-wal", "-shm", "-journal"):
        if path.name.endswith(suffix):
            base = path.name[: -len(suffix)]
            return path.with_name(f"{base}.{ASIDE}-{stamp}{suffix}")
    return path.with_name(f"{path.name}.{ASIDE}-{stamp}")


def restore_backup(inst, path: Path, stamp: str | None = None) -> RestoreResult:
    info = verify_backup(path)  # raises before anything is touched
    p = inst.paths
    settings = inst.settings
    stamp = stamp or datetime.now().strftime("%Y%m%d-%H%M%S")
    result = RestoreResult(backup=info, stamp=stamp)
    restore_db = settings.is_sqlite and info.has_database
    if settings.is_sqlite and not info.has_database:
        raise BackupError(f"El respaldo {info.name} no contiene users.db (se tomó con PostgreSQL).")
    if not settings.is_sqlite:
        result.warnings.append("La base de usuarios está en PostgreSQL: restáurela con pg_restore; "
                               "solo se restaura el registro de auditoría.")
    result.revision_before = (info.manifest.get("database") or {}).get("revision")

    inst.db.dispose()
    staged: list[tuple[Path, Path]] = []  # (staged file, final path)
    if restore_db:
        staged.append((p.data_dir / f".users.db.restore-{stamp}", p.users_db))
    if "audit.jsonl" in info.manifest["files"]:
        staged.append((p.logs_dir / f".audit.jsonl.restore-{stamp}", p.audit_log))
    moved: list[tuple[Path, Path]] = []
    try:
        for tmp, final in staged:
            final.parent.mkdir(parents=True, exist_ok=True)
            copy_durable(path / final.name, tmp, 0o640)
        crash_point("restore_staged")
        to_move = []
        if restore_db:
            to_move += [p.users_db, *(p.users_db.with_name(p.users_db.name + s) for s in ("-wal", "-shm", "-journal"))]
        if any(final == p.audit_log for _, final in staged):
            to_move += [p.audit_log, inst.audit.head_path]
            to_move += _rotated_since_backup(p.audit_log, path / "audit.jsonl", result)
        for f in to_move:
            if f.exists():
                target = aside_name(f, stamp)
                os.rename(f, target)
                moved.append((f, target))
        crash_point("restore_moved")
        for tmp, final in staged:
            os.rename(tmp, final)
        for d in {final.parent for _, final in staged} | {f.parent for f, _ in moved}:
            fsync_dir(d)
    except BaseException:
        for tmp, final in staged:
            if tmp.exists():
                tmp.unlink()
        for original, target in reversed(moved):
            if target.exists():
                if original.exists():
                    original.unlink()
                os.rename(target, original)
        raise
    result.moved_aside = [t for _, t in moved]

    if any(final == p.audit_log for _, final in staged):
        inst.audit.reset_head()
    if restore_db:
        try:
            if not migrate.is_at_head(inst.db.engine):
                migrate.upgrade(inst.db.engine, settings.database_url)
                result.warnings.append("El respaldo era de una versión anterior: se aplicaron las migraciones.")
            result.revision_after = migrate.current_revision(inst.db.engine)
        except Exception as exc:
            raise BackupError(f"Se restauró {info.name} pero la migración falló: {exc}. "
                              f"Los archivos anteriores quedaron en {p.data_dir} con sufijo .{ASIDE}-{stamp}.") from None
        finally:
            inst.db.dispose()
        try:
            result.tables = verify_sqlite_copy(p.users_db)["tables"]
        except SnapshotError as exc:  # pragma: no cover - verified before the swap
            raise BackupError(f"La base restaurada no verifica: {exc}") from None
    return result


def _rotated_since_backup(current: Path, restored: Path, result: RestoreResult) -> list[Path]:
    """The rotated audit files newer than the backup's audit.jsonl (moved aside with it)."""
    prev = first_prev(restored)
    if prev is None and restored.stat().st_size == 0:
        # an empty log (taken right after a rotation) continues where the backup's copy of
        # the newest rotated file ends
        copies = rotated_files(restored)
        prev = last_hash(copies[-1]) if copies else GENESIS
    newer = rotated_after(current, prev) if prev else None
    if newer is None:
        result.warnings.append("No se encontró el archivo de auditoría rotado que precede al respaldo: "
                               "los archivos rotados quedan como están y 'emtp-admin audit verify' "
                               "puede informar un corte en la cadena.")
        return []
    return newer
