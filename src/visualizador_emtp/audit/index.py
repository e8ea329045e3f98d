"""An incremental SQLite index of the audit log, so the Auditoría page never parses the log per request.

``data/run/audit_index.db`` (WAL) holds one row per audit line (indexed ts, event, actor, success,
ip, plus the raw JSON line) and a daily roll-up (Chile day × event × actor × success × page → count)
that answers the summary cards and the totals without touching the rows.

Ingest reads only the bytes appended since the last ingest. Every log file (audit.jsonl and the
rotated audit.jsonl.N[.gz]) is identified by a fingerprint, the sha256 of its first line (each line
carries its own chain hash, so the first line names the file whatever it is called now). For each
fingerprint the index remembers how many (uncompressed) bytes it has consumed and a signature of
the last line consumed. So after logrotate renames audit.jsonl to audit.jsonl.1 (or compresses it,
or copies and truncates it) the old file is finished from where the index stopped, and the new
audit.jsonl is read from its start; nothing is counted twice. A file that disappears (the oldest
rotation deleted) takes its rows with it; content that does not match what was indexed (a restore,
an edited file) makes the index rebuild itself from scratch.

Several gunicorn workers may call :func:`AuditIndex.refresh` at once: an flock on
``data/run/audit_index.lock`` serialises ingests, and rows and file offsets are committed in the
same transaction, so a crash mid-ingest leaves a consistent index. Readers just read (WAL).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import logging
import os
import re
import sqlite3
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from visualizador_emtp.audit.chain import AuditLog

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BATCH_LINES = 20_000
READ_CHUNK = 4 * 1024 * 1024
BULK_REINDEX_BYTES = 8 * 1024 * 1024  # first ingest larger than this: build secondary indexes afterwards

try:
    from zoneinfo import ZoneInfo

    CHILE_TZ = ZoneInfo("America/Santiago")
except Exception:  # pragma: no cover - no tz database
    CHILE_TZ = timezone(timedelta(hours=-4))

_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    file_no   INTEGER PRIMARY KEY,
    fp        TEXT NOT NULL UNIQUE,   -- sha256 of the first line
    name      TEXT NOT NULL,          -- last name it was seen under
    dev       INTEGER, ino INTEGER, size INTEGER, mtime_ns INTEGER,
    consumed  INTEGER NOT NULL,       -- uncompressed bytes ingested (always at a line boundary)
    tail_len  INTEGER NOT NULL,       -- length of the last consumed line, newline included
    tail_sig  TEXT NOT NULL,          -- sha256 of that line
    lines     INTEGER NOT NULL        -- lines consumed (rows + skipped)
);
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY,
    ts      TEXT NOT NULL,            -- UTC, 2025-05-12T18:03:22.123Z (sorts as text)
    event   TEXT NOT NULL,
    actor   TEXT NOT NULL COLLATE NOCASE,
    success INTEGER NOT NULL,
    ip      TEXT NOT NULL,
    file_no INTEGER NOT NULL,
    raw     TEXT NOT NULL             -- the audit line as written
);
CREATE TABLE IF NOT EXISTS daily (
    day     TEXT NOT NULL,            -- Chile local date, 2025-05-12
    event   TEXT NOT NULL,
    actor   TEXT NOT NULL COLLATE NOCASE,
    success INTEGER NOT NULL,
    page    TEXT NOT NULL,            -- detail.page when present, else ''
    n       INTEGER NOT NULL,
    PRIMARY KEY (day, event, actor, success, page)
) WITHOUT ROWID;
"""

_SECONDARY_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ix_events_ts ON events (ts)",
    "CREATE INDEX IF NOT EXISTS ix_events_event_ts ON events (event, ts)",
    "CREATE INDEX IF NOT EXISTS ix_events_actor_ts ON events (actor, ts)",
    "CREATE INDEX IF NOT EXISTS ix_events_success_ts ON events (success, ts)",
    "CREATE INDEX IF NOT EXISTS ix_events_ip_ts ON events (ip, ts)",
)
_SECONDARY_NAMES = ("ix_events_ts", "ix_events_event_ts", "ix_events_actor_ts", "ix_events_success_ts",
                    "ix_events_ip_ts")


class IndexBusy(Exception):
    """Another process is ingesting and did not finish within the wait."""


class _OutOfTime(Exception):
    """The ingest used up its time budget; what was committed so far stays."""


@dataclass
class IngestStats:
    lines: int = 0           # rows added
    skipped: int = 0         # unreadable lines (not JSON, no valid ts) — `audit verify` reports them
    removed: int = 0         # rows dropped because their file no longer exists
    bytes: int = 0
    files: int = 0           # files read
    rebuilt: bool = False
    partial: bool = False    # stopped at the time budget: more remains to ingest on the next call
    seconds: float = 0.0


# -- helpers ------------------------------------------------------------------------------------

def normalize_ts(value: Any) -> str | None:
    """The record's ts as a sortable UTC text, or None when it is not a date."""
    if isinstance(value, str) and _TS_RE.match(value):
        return value
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, ValueError):
        return None


def chile_day_of(ts: str) -> str:
    dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return dt.astimezone(CHILE_TZ).date().isoformat()


class _DayCache:
    """Chile day of a UTC ts, cached per UTC hour (Chile's offsets and DST changes are whole hours)."""

    def __init__(self):
        self._by_hour: dict[str, str | None] = {}

    def __call__(self, ts: str) -> str:
        hour = ts[:13]
        day = self._by_hour.get(hour, "")
        if day == "":
            first = chile_day_of(hour + ":00:00.000Z")
            last = chile_day_of(hour + ":59:59.999Z")
            day = first if first == last else None
            self._by_hour[hour] = day
        return day if day is not None else chile_day_of(ts)


def chile_day_bounds(first: date, last: date) -> tuple[str, str]:
    """UTC ts range [lo, hi) covering the Chile local days first..last inclusive."""
    def start(d: date) -> str:
        dt = datetime(d.year, d.month, d.day, tzinfo=CHILE_TZ)
        return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return start(first), start(last + timedelta(days=1))


def page_of(detail: Any) -> str:
    if isinstance(detail, dict):
        page = detail.get("page")
        if isinstance(page, str):
            return page[:200]
    return ""


def _parse_line(raw: bytes) -> tuple | None:
    """(ts, event, actor, success, ip, page, text) of one line, or None when unreadable."""
    try:
        text = raw.decode("utf-8")
        rec = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(rec, dict):
        return None
    ts = normalize_ts(rec.get("ts"))
    if ts is None:
        return None
    return (ts, str(rec.get("event") or "")[:100], str(rec.get("actor") or "")[:200],
            1 if rec.get("success") is True or rec.get("success") == 1 else 0,
            str(rec.get("ip") or "")[:64], page_of(rec.get("detail")), text.rstrip("\n"))


def _sig(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _open_binary(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _first_line(path: Path) -> bytes | None:
    """The first complete line (without newline), or None if the file has none yet."""
    try:
        with _open_binary(path) as f:
            buf = b""
            while b"\n" not in buf:
                chunk = f.read(8192)
                if not chunk:
                    # a rotated file whose only line lacks a newline is still a line
                    return buf if (path.name != "audit.jsonl" and buf) else None
                buf += chunk
                if len(buf) > 10 * 1024 * 1024:
                    break
            return buf.split(b"\n", 1)[0]
    except (OSError, EOFError):
        return None


@dataclass
class _LogFile:
    path: Path
    st: os.stat_result
    active: bool
    fp: str | None = None


# -- the index ----------------------------------------------------------------------------------

class AuditIndex:
    def __init__(self, audit: AuditLog, db_path: Path):
        self.audit = audit
        self.db_path = Path(db_path)
        self.lock_path = self.db_path.with_suffix(".lock")

    @classmethod
    def for_instance(cls, inst) -> "AuditIndex":
        return cls(inst.audit, inst.paths.run_dir / "audit_index.db")

    # connections ------------------------------------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        """A connection with the schema in place (creating or upgrading it when needed)."""
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        if not self.db_path.exists():  # audit data: not world-readable (SQLite gives -wal/-shm the same mode)
            os.close(os.open(self.db_path, os.O_WRONLY | os.O_CREAT, 0o640))
        con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA busy_timeout = 30000")
        if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute("PRAGMA temp_store = MEMORY")
        con.execute("PRAGMA cache_size = -32000")
        have = con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        version = con.execute("SELECT value FROM meta WHERE key='schema'").fetchone() if have else None
        if version is None or version[0] != str(SCHEMA_VERSION):
            with self._locked(30.0):
                self._create_schema(con)
        return con

    def _create_schema(self, con: sqlite3.Connection) -> None:
        have = con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        version = con.execute("SELECT value FROM meta WHERE key='schema'").fetchone() if have else None
        if version is not None and version[0] == str(SCHEMA_VERSION):
            return  # another process did it while we waited for the lock
        con.executescript(
            "BEGIN IMMEDIATE;"
            + "".join(f"DROP TABLE IF EXISTS {t};" for t in ("meta", "files", "events", "daily"))
            + _SCHEMA + ";".join(_SECONDARY_INDEXES) + ";"
            + f"INSERT OR REPLACE INTO meta VALUES ('schema', '{SCHEMA_VERSION}');"
            + "COMMIT;")

    @contextmanager
    def _locked(self, wait: float) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            deadline = time.monotonic() + max(wait, 0.0)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise IndexBusy() from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # ingest -----------------------------------------------------------------------------------

    def refresh(self, wait: float = 30.0, budget: float | None = None) -> IngestStats:
        """Ingest whatever was appended since the last call. Raises IndexBusy after ``wait`` s.
        With a ``budget`` (seconds) a large backlog is ingested over several calls (stats.partial),
        so a web request never spends more than about that long ingesting."""
        con = self.connect()
        try:
            with self._locked(wait):
                return self._ingest(con, rebuild=False, budget=budget)
        finally:
            con.close()

    def rebuild(self, wait: float = 60.0) -> IngestStats:
        con = self.connect()
        try:
            with self._locked(wait):
                return self._ingest(con, rebuild=True)
        finally:
            con.close()

    def _current_files(self) -> list[_LogFile]:
        out = []
        files = self.audit.files()
        for p in files:
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            out.append(_LogFile(p, st, active=(p == self.audit.path)))
        return out

    def _ingest(self, con: sqlite3.Connection, rebuild: bool, budget: float | None = None) -> IngestStats:
        started = time.monotonic()
        deadline = None if budget is None else started + budget
        stats = IngestStats()
        known = {row[1]: row for row in con.execute(
            "SELECT file_no, fp, name, dev, ino, size, mtime_ns, consumed, tail_len, tail_sig, lines FROM files")}
        by_stat = {(r[3], r[4], r[5], r[6]): r for r in known.values()}
        current = self._current_files()

        if not rebuild:
            # Fingerprint each file; unchanged files (same inode, size, mtime) are known without reading.
            for lf in current:
                hit = by_stat.get((lf.st.st_dev, lf.st.st_ino, lf.st.st_size, lf.st.st_mtime_ns))
                if hit is not None:
                    lf.fp = hit[1]
                else:
                    first = _first_line(lf.path)
                    lf.fp = _sig(first) if first is not None else None
            # One file per fingerprint: while copytruncate runs, the copy and the original share it.
            chosen: dict[str, _LogFile] = {}
            for lf in current:
                if lf.fp is None:
                    continue
                other = chosen.get(lf.fp)
                if other is None or lf.st.st_size > other.st.st_size or (
                        lf.st.st_size == other.st.st_size and other.active):
                    chosen[lf.fp] = lf
            todo = [lf for lf in current if lf.fp is not None and chosen[lf.fp] is lf]
            # A file that changed under us (restored, edited, shrunk): start again from scratch.
            for lf in todo:
                row = known.get(lf.fp)
                if row is not None and not self._continues(lf, row):
                    log.warning("El índice de auditoría no coincide con %s: se reconstruye.", lf.path.name)
                    rebuild = True
                    break
            gone = [row for fp, row in known.items() if fp not in chosen]
        if rebuild:
            stats.rebuilt = True
            con.execute("BEGIN IMMEDIATE")
            con.execute("DELETE FROM events")
            con.execute("DELETE FROM daily")
            con.execute("DELETE FROM files")
            con.execute("COMMIT")
            known, gone = {}, []
            for lf in current:
                first = _first_line(lf.path)
                lf.fp = _sig(first) if first is not None else None
            seen: set[str] = set()
            todo = []
            for lf in current:
                if lf.fp is not None and lf.fp not in seen:
                    seen.add(lf.fp)
                    todo.append(lf)

        for row in gone:
            stats.removed += self._drop_file(con, row[0])

        bulk = False
        if deadline is None and not known and sum(lf.st.st_size for lf in todo) > BULK_REINDEX_BYTES:
            empty = con.execute("SELECT NOT EXISTS (SELECT 1 FROM events)").fetchone()[0]
            if empty:
                bulk = True
                for name in _SECONDARY_NAMES:
                    con.execute(f"DROP INDEX IF EXISTS {name}")
        elif self._missing_indexes(con):
            bulk = True  # a bulk ingest was interrupted (worker killed) before it rebuilt them
        try:
            for lf in todo:
                self._ingest_file(con, lf, known.get(lf.fp), stats, deadline)
        except _OutOfTime:
            stats.partial = True
        finally:
            if bulk:
                for ddl in _SECONDARY_INDEXES:
                    con.execute(ddl)
                con.execute("ANALYZE")
        stats.seconds = time.monotonic() - started
        return stats

    @staticmethod
    def _missing_indexes(con: sqlite3.Connection) -> bool:
        have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        return not set(_SECONDARY_NAMES) <= have

    def _continues(self, lf: _LogFile, row: tuple) -> bool:
        """Does this file still hold, at the remembered offset, the line the index consumed last?"""
        consumed, tail_len, tail_sig = row[7], row[8], row[9]
        if (lf.st.st_dev, lf.st.st_ino, lf.st.st_size, lf.st.st_mtime_ns) == (row[3], row[4], row[5], row[6]):
            return True
        if consumed == 0:
            return True
        if not lf.path.name.endswith(".gz") and lf.st.st_size < consumed:
            return False
        try:
            with _open_binary(lf.path) as f:
                f.seek(consumed - tail_len)
                return _sig(f.read(tail_len)) == tail_sig
        except (OSError, EOFError):
            return False

    def _drop_file(self, con: sqlite3.Connection, file_no: int) -> int:
        """Remove the rows of a log file that no longer exists, and their share of the roll-up."""
        day_of = _DayCache()
        counts: Counter = Counter()
        removed = 0
        for ts, event, actor, success, raw in con.execute(
                "SELECT ts, event, actor, success, raw FROM events WHERE file_no = ?", (file_no,)):
            try:
                page = page_of(json.loads(raw).get("detail"))
            except (ValueError, AttributeError):
                page = ""
            counts[(day_of(ts), event, actor, success, page)] += 1
            removed += 1
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("DELETE FROM events WHERE file_no = ?", (file_no,))
            con.executemany("UPDATE daily SET n = n - ? WHERE day=? AND event=? AND actor=? AND success=? AND page=?",
                            [(n, *key) for key, n in counts.items()])
            con.execute("DELETE FROM daily WHERE n <= 0")
            con.execute("DELETE FROM files WHERE file_no = ?", (file_no,))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return removed

    def _ingest_file(self, con: sqlite3.Connection, lf: _LogFile, row: tuple | None, stats: IngestStats,
                     deadline: float | None = None) -> None:
        st = lf.st
        stat_key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if row is not None and stat_key == (row[3], row[4], row[5], row[6]):
            if row[2] != lf.path.name:
                con.execute("UPDATE files SET name=? WHERE file_no=?", (lf.path.name, row[0]))
            return
        if row is None:
            cur = con.execute("INSERT INTO files (fp, name, consumed, tail_len, tail_sig, lines) "
                              "VALUES (?, ?, 0, 0, '', 0)", (lf.fp, lf.path.name))
            file_no, consumed, tail, nlines = cur.lastrowid, 0, (0, ""), 0
        else:
            file_no, consumed, tail, nlines = row[0], row[7], (row[8], row[9]), row[10]
        final = not lf.active  # a rotated file never grows: its last line counts even without a newline
        day_of = _DayCache()
        stats.files += 1

        def flush(rows: list, daily: Counter, done: bool) -> None:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany("INSERT INTO events (ts, event, actor, success, ip, file_no, raw) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                con.executemany("INSERT INTO daily (day, event, actor, success, page, n) VALUES (?, ?, ?, ?, ?, ?) "
                                "ON CONFLICT (day, event, actor, success, page) DO UPDATE SET n = n + excluded.n",
                                [(*k, n) for k, n in daily.items()])
                # The stat is recorded only once the file was read to its end; until then a crash
                # simply resumes from `consumed`.
                known_stat = stat_key if done else (None, None, None, None)
                con.execute("UPDATE files SET name=?, dev=?, ino=?, size=?, mtime_ns=?, consumed=?, tail_len=?, "
                            "tail_sig=?, lines=? WHERE file_no=?",
                            (lf.path.name, *known_stat, pos, tail[0], tail[1], nlines, file_no))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

        pos = consumed
        try:
            f = _open_binary(lf.path)
        except OSError:
            return
        with f:
            try:
                f.seek(consumed)
            except (OSError, EOFError):
                return
            rows: list = []
            daily: Counter = Counter()
            buf = b""
            while True:
                try:
                    chunk = f.read(READ_CHUNK)
                except (OSError, EOFError):
                    chunk = b""
                if chunk:
                    buf += chunk
                    parts = buf.split(b"\n")
                    buf = parts.pop()
                    lines = [part + b"\n" for part in parts]
                elif final and buf:
                    lines, buf = [buf], b""  # the unterminated last line of a rotated file
                else:
                    break
                for line in lines:
                    pos += len(line)
                    nlines += 1
                    tail = (len(line), _sig(line))
                    stats.bytes += len(line)
                    parsed = _parse_line(line.rstrip(b"\n")) if line.strip() else None
                    if parsed is None:
                        stats.skipped += 1
                        continue
                    ts, event, actor, success, ip, page, text = parsed
                    rows.append((ts, event, actor, success, ip, file_no, text))
                    daily[(day_of(ts), event, actor, success, page)] += 1
                    if len(rows) >= BATCH_LINES:
                        stats.lines += len(rows)
                        flush(rows, daily, False)
                        rows, daily = [], Counter()
                        if deadline is not None and time.monotonic() > deadline:
                            raise _OutOfTime()
            stats.lines += len(rows)
            flush(rows, daily, True)


def index_for(inst) -> AuditIndex:
    return AuditIndex.for_instance(inst)
