"""Consistent copies of users.db through SQLite's online backup API.

The source is read inside one read transaction: the row counts and the copied pages
come from the same snapshot (WAL content included), while the app keeps writing.
Never a plain file copy: copying users.db alone misses what is still in users.db-wal
and can catch a page half-written.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


class SnapshotError(Exception):
    """The copy could not be made or did not verify. Spanish message."""


def user_tables(con: sqlite3.Connection) -> list[str]:
    rows = con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                       "ORDER BY name").fetchall()
    return [r[0] for r in rows]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def count_rows(con: sqlite3.Connection) -> dict[str, int]:
    return {t: con.execute(f"SELECT count(*) FROM {_q(t)}").fetchone()[0] for t in user_tables(con)}


def _open_source(src: Path, timeout_s: float) -> sqlite3.Connection:
    if not src.exists():
        raise SnapshotError(f"No existe la base de datos {src}.")
    try:
        con = sqlite3.connect(f"file:{src}?mode=rw", uri=True, timeout=timeout_s, isolation_level=None)
    except sqlite3.OperationalError:
        # no write permission: a read-only open still sees the WAL when -shm exists
        con = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=timeout_s, isolation_level=None)
    con.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
    return con


def snapshot_sqlite(src: Path, dst: Path, timeout_s: float = 30.0) -> dict:
    """Copy src to dst (a new single-file database in rollback-journal mode) and verify it.

    Returns {"tables": {name: rows}, "revision": alembic revision or None, "integrity": "ok"}.
    Raises SnapshotError when the source is unreadable or the copy does not verify.
    """
    if dst.exists():
        dst.unlink()
    try:
        source = _open_source(src, timeout_s)
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"No se pudo abrir {src}: {exc}.") from None
    try:
        try:
            source.execute("BEGIN")  # deferred: the first read below fixes the snapshot
            counts = count_rows(source)
            target = sqlite3.connect(dst, isolation_level=None)
            try:
                source.backup(target)  # one step, inside the same read transaction
                target.execute("PRAGMA journal_mode=DELETE")
                os.chmod(dst, 0o640)
            finally:
                target.close()
            source.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise SnapshotError(f"No se pudo leer {src} ({exc}). Si la base está dañada ejecute "
                                "'emtp-admin db recover'.") from None
    finally:
        source.close()
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    info = verify_sqlite_copy(dst, counts)
    return info


def verify_sqlite_copy(path: Path, expected_counts: dict[str, int] | None = None) -> dict:
    """Full integrity_check and row counts of a copy; SnapshotError on any difference."""
    if not path.exists():
        raise SnapshotError(f"Falta el archivo {path.name}.")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = con.execute("PRAGMA integrity_check").fetchall()
            integrity = "; ".join(str(r[0]) for r in rows[:5])
            if integrity != "ok":
                raise SnapshotError(f"La copia {path.name} no pasa integrity_check: {integrity}.")
            counts = count_rows(con)
            revision = None
            if "alembic_version" in counts:
                row = con.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"La copia {path.name} no se puede leer: {exc}.") from None
    if expected_counts is not None and counts != expected_counts:
        diff = ", ".join(f"{t}: {expected_counts.get(t)} ≠ {counts.get(t)}"
                         for t in sorted(set(counts) | set(expected_counts))
                         if counts.get(t) != expected_counts.get(t))
        raise SnapshotError(f"La copia {path.name} no tiene las filas esperadas ({diff}).")
    return {"tables": counts, "revision": revision, "integrity": "ok"}
