"""emtp-admin db recover: "database disk image is malformed" → keep the damaged file aside,
recover what can be read, verify, swap in.

Recovery uses the sqlite3 CLI's ``.recover`` (reads every page it can, even from a
damaged b-tree) when /usr/bin/sqlite3 is present, else a Python fallback that copies
each table row by row and skips what it cannot read. The result is a new file that
must pass integrity_check and contain the users table before it replaces users.db.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from visualizador_emtp import migrate
from visualizador_emtp.dbcheck import sqlite_integrity
from visualizador_emtp.ops.snapshot import _q, count_rows, user_tables
from visualizador_emtp.ops.util import copy_durable, crash_point, fsync_dir, fsync_file

SQLITE3_CLI = "/usr/bin/sqlite3"
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
REQUIRED_TABLES = ("users",)
PROBE_WINDOW = 256  # rowids probed one by one past a damaged spot
MAX_EMPTY_WINDOWS = 8  # consecutive windows without a readable row: the table's end


class RecoverError(Exception):
    """Recovery impossible; the live file is left as it was. Spanish message."""


@dataclass
class RecoverResult:
    damaged_copy: Path
    method: str
    tables_before: dict[str, int | None] = field(default_factory=dict)
    tables_after: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _readable_counts(path: Path) -> dict[str, int | None]:
    """Row counts of a damaged file where it can still be read (None: unreadable)."""
    out: dict[str, int | None] = {}
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.DatabaseError:
        return out
    try:
        try:
            tables = user_tables(con)
        except sqlite3.DatabaseError:
            return out
        for t in tables:
            try:
                out[t] = con.execute(f"SELECT count(*) FROM {_q(t)}").fetchone()[0]
            except sqlite3.DatabaseError:
                out[t] = None
    finally:
        con.close()
    return out


def _pad_truncated(path: Path) -> bool:
    """A truncated file: extend it with zero pages up to the size its header declares, so SQLite
    opens it again (the missing pages then read as damaged ones and are skipped)."""
    with open(path, "r+b") as f:
        header = f.read(100)
        if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
            return False
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(header[28:32], "big")
        size = f.seek(0, os.SEEK_END)
        if pages and size < pages * page_size:
            f.truncate(pages * page_size)
            return True
    return False


def _recover_cli(cli: str, src: Path, out: Path) -> None:
    dump = subprocess.run([cli, str(src), ".recover"], capture_output=True, timeout=600)
    if not dump.stdout.strip():
        raise RecoverError(f"sqlite3 .recover no obtuvo datos: {dump.stderr.decode(errors='replace').strip()[:200]}")
    load = subprocess.run([cli, str(out)], input=dump.stdout, capture_output=True, timeout=600)
    if load.returncode != 0:
        raise RecoverError(f"No se pudo cargar lo recuperado: {load.stderr.decode(errors='replace').strip()[:200]}")


def _plausible(values, kinds: list[str]) -> bool:
    """A row read from a damaged page must at least have the declared kinds of values."""
    for v, k in zip(values, kinds):
        if v is None:
            continue
        if ("CHAR" in k or "TEXT" in k or "CLOB" in k) and not isinstance(v, str):
            return False
        if ("INT" in k or "BOOL" in k) and not isinstance(v, int):
            return False
    return True


def _recover_python(src: Path, out: Path) -> list[str]:
    """Copy schema and rows table by table; rows that cannot be read are skipped."""
    notes = []
    try:
        s = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        schema = s.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                           "AND name NOT LIKE 'sqlite_%'").fetchall()
    except sqlite3.DatabaseError as exc:
        raise RecoverError(f"No se puede leer el esquema: {exc}") from None
    d = sqlite3.connect(out, isolation_level=None)
    try:
        for kind, name, sql in schema:
            if kind == "table":
                d.execute(sql)
        for kind, name, sql in schema:
            if kind != "table":
                continue
            last = None
            skipped = bad_rows = probes = empty_windows = 0
            kinds = {r[1]: (r[2] or "").upper() for r in s.execute(f"PRAGMA table_info({_q(name)})")}
            cols = list(kinds)
            insert = (f"INSERT INTO {_q(name)} (rowid, {', '.join(_q(c) for c in cols)}) "
                      f"VALUES ({', '.join('?' * (len(cols) + 1))})")
            select = f"SELECT rowid, {', '.join(_q(c) for c in cols)} FROM {_q(name)}"
            kinds_list = [kinds[c] for c in cols]

            def take(row) -> bool:
                nonlocal bad_rows
                if not _plausible(row[1:], kinds_list):
                    bad_rows += 1  # garbage from a damaged page (wrong types)
                    return False
                try:
                    d.execute(insert, row)
                except sqlite3.IntegrityError:
                    bad_rows += 1  # garbage from a damaged page (NOT NULL, duplicate key)
                    return False
                return True

            d.execute("BEGIN")
            while empty_windows < MAX_EMPTY_WINDOWS:
                try:
                    cur = s.execute(f"{select} {'' if last is None else 'WHERE rowid > ?'} ORDER BY rowid",
                                    () if last is None else (last,))
                    for row in cur:
                        if last is not None and row[0] <= last:
                            continue  # a damaged page can yield cells out of order
                        if take(row):
                            last = row[0]
                    break
                except sqlite3.DatabaseError:
                    # the cursor reads one row ahead, so the error may hide the next good row:
                    # probe rowids one at a time (a point lookup never steps past its row)
                    skipped += 1
                    nxt = (last or 0) + 1
                    empty_windows += 1
                    for _ in range(PROBE_WINDOW):
                        probes += 1
                        try:
                            row = s.execute(f"{select} WHERE rowid = ?", (nxt,)).fetchone()
                        except sqlite3.DatabaseError:
                            row = None
                        if row is not None and take(row):
                            empty_windows = 0
                            break
                        nxt += 1
                    last = nxt
            d.execute("COMMIT")
            if bad_rows:
                notes.append(f"{name}: {bad_rows} fila(s) inválidas descartadas")
            if skipped:
                notes.append(f"{name}: se saltaron zonas ilegibles")
        for kind, name, sql in schema:
            if kind in ("index", "trigger", "view"):
                try:
                    d.execute(sql)
                except sqlite3.DatabaseError as exc:
                    notes.append(f"{kind} {name} no se recreó ({exc})")
    finally:
        d.close()
        s.close()
    return notes


def recover_database(inst, stamp: str | None = None, sqlite3_cli: str | None = SQLITE3_CLI) -> RecoverResult:
    p = inst.paths
    db = p.users_db
    if not inst.settings.is_sqlite:
        raise RecoverError("La base de usuarios está en PostgreSQL: 'db recover' solo aplica a SQLite.")
    if not db.exists():
        raise RecoverError(f"No existe {db}.")
    stamp = stamp or datetime.now().strftime("%Y%m%d-%H%M%S")
    inst.db.dispose()

    # 1. the damaged file (and its WAL) kept aside untouched
    damaged = db.with_name(f"{db.name}.damaged-{stamp}")
    copy_durable(db, damaged, 0o640)
    for suf in SIDE_SUFFIXES:
        side = db.with_name(db.name + suf)
        if side.exists():
            copy_durable(side, damaged.with_name(damaged.name + suf), 0o640)
    result = RecoverResult(damaged_copy=damaged, method="")

    # 2. recover from a scratch copy, so nothing (not even a WAL checkpoint) alters the kept one
    work = p.data_dir / f".recover-{stamp}"
    work.mkdir(mode=0o750)
    try:
        src = work / "damaged.db"
        copy_durable(db, src)
        for suf in SIDE_SUFFIXES[:1]:
            side = db.with_name(db.name + suf)
            if side.exists():
                copy_durable(side, src.with_name(src.name + suf))
        if _pad_truncated(src):
            result.warnings.append("El archivo estaba truncado: las páginas faltantes se dieron por perdidas.")
        result.tables_before = _readable_counts(src)
        out = work / "recovered.db"
        methods = []
        if sqlite3_cli and Path(sqlite3_cli).exists():
            try:
                _recover_cli(sqlite3_cli, src, out)
                methods.append("sqlite3 .recover")
                if "users" not in _readable_counts(out):
                    raise RecoverError("sqlite3 .recover no recuperó la tabla users")
            except (RecoverError, OSError, subprocess.SubprocessError) as exc:
                # Debian's sqlite3 is built without sqlite_dbpage, which .recover needs
                result.warnings.append(f"sqlite3 .recover no sirvió ({exc}); se usó la copia fila por fila.")
                methods = []
                for f in (out, out.with_name(out.name + "-journal")):
                    f.unlink(missing_ok=True)
        if not methods:
            result.warnings += _recover_python(src, out)
            methods.append("copia fila por fila")
        result.method = methods[0]
        crash_point("recover_built")

        # 3. verify
        check = sqlite_integrity(out, quick=False)
        if check != "ok":
            raise RecoverError(f"la base recuperada no pasa integrity_check ({check})")
        con = sqlite3.connect(out, isolation_level=None)
        try:
            tables = user_tables(con)
            missing = [t for t in REQUIRED_TABLES if t not in tables]
            if missing:
                raise RecoverError(f"no se recuperó la tabla {', '.join(missing)}")
            if "lost_and_found" in tables:
                n = con.execute("SELECT count(*) FROM lost_and_found").fetchone()[0]
                if n:
                    result.warnings.append(f"{n} fragmento(s) sin tabla identificable quedaron fuera "
                                           f"(siguen en {damaged.name}).")
                con.execute("DROP TABLE lost_and_found")
            has_rev = "alembic_version" in tables and con.execute(
                "SELECT count(*) FROM alembic_version").fetchone()[0] == 1
            if not has_rev:
                con.execute("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL "
                            "CONSTRAINT alembic_version_pkc PRIMARY KEY)")
                con.execute("DELETE FROM alembic_version")
                con.execute("INSERT INTO alembic_version VALUES (?)", (migrate.head_revision(),))
                result.warnings.append("Se perdió la revisión de migraciones: se marcó la actual "
                                       f"({migrate.head_revision()}).")
            result.tables_after = count_rows(con)
            con.execute("PRAGMA journal_mode=DELETE")
        finally:
            con.close()
        fsync_file(out)

        # 4. swap: the old WAL must never be replayed onto the new file
        staged = db.with_name(f".{db.name}.recovered-{stamp}")
        os.replace(out, staged)
        for suf in SIDE_SUFFIXES:
            side = db.with_name(db.name + suf)
            if side.exists():
                side.unlink()
        os.replace(staged, db)
        fsync_dir(db.parent)
    except RecoverError:
        raise
    except (sqlite3.DatabaseError, OSError, subprocess.SubprocessError) as exc:
        raise RecoverError(str(exc)) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result
