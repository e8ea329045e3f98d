"""Append and verify the hash-chained audit log.

Each line is one JSON object: ts, event, actor, target, success, ip, user_agent,
detail, prev (hash of the previous line) and hash (sha256 of prev + this line's
fields). Appends from many processes are serialised by an flock on a lock file
and written with a single os.write on an O_APPEND descriptor, so lines never
interleave. The last hash is also kept in ``audit.head`` so a
truncated tail is detected. After logrotate moves the file away, the first line
of the new file chains to the last line of ``audit.jsonl.1``.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

GENESIS = "0" * 64
FIELDS = ("ts", "event", "actor", "target", "success", "ip", "user_agent", "detail")


def _line_hash(prev: str, record: dict[str, Any]) -> str:
    body = json.dumps({k: record.get(k) for k in FIELDS}, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256((prev + body).encode("utf-8")).hexdigest()


def _read_last_line(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            if end == 0:
                return None
            pos, chunk, buf = end, 8192, b""
            while pos > 0:
                step = min(chunk, pos)
                pos -= step
                f.seek(pos)
                buf = f.read(step) + buf
                stripped = buf.rstrip(b"\n")
                if b"\n" in stripped:
                    return stripped.rsplit(b"\n", 1)[1]
            return buf.rstrip(b"\n") or None
    except FileNotFoundError:
        return None


def _ends_without_newline(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except FileNotFoundError:
        return False


def rotated_files(path: Path) -> list[Path]:
    """audit.jsonl.N[.gz] … audit.jsonl.1, oldest first (logrotate numbering)."""
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)(\.gz)?$")
    found = []
    for p in path.parent.glob(path.name + ".*"):
        m = pattern.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found, reverse=True)]


def _open_text(p: Path):
    if p.suffix == ".gz":
        return gzip.open(p, "rt", encoding="utf-8")
    return open(p, "r", encoding="utf-8")


def _hash_of(line: bytes | None) -> str:
    if not line:
        return GENESIS
    try:
        return json.loads(line)["hash"]
    except (ValueError, KeyError, TypeError):
        return hashlib.sha256(line).hexdigest()  # a damaged tail still anchors the chain


def last_hash(path: Path) -> str:
    """The hash the next line after this file chains to (GENESIS for an empty or missing file)."""
    if path.suffix == ".gz":
        last_text = None
        try:
            with _open_text(path) as f:
                for last_text in f:
                    pass
        except FileNotFoundError:
            return GENESIS
        return _hash_of(last_text.rstrip("\n").encode() if last_text else None)
    return _hash_of(_read_last_line(path))


def first_prev(path: Path) -> str | None:
    """The ``prev`` of a file's first line: where in the chain the file continues."""
    try:
        with _open_text(path) as f:
            first = f.readline()
    except FileNotFoundError:
        return None
    try:
        return json.loads(first)["prev"] if first.strip() else None
    except (ValueError, KeyError, TypeError):
        return None


def rotated_after(path: Path, prev: str) -> list[Path] | None:
    """The rotated files written after the line whose hash is ``prev``, newest first.

    A restored audit.jsonl continues the chain at ``prev``; rotated files newer than that
    point belong to the period the restore rolls back. None when no rotated file ends at
    ``prev`` (the predecessor was deleted): the caller cannot tell which files are newer."""
    newer = []
    for p in reversed(rotated_files(path)):
        if last_hash(p) == prev:
            return newer
        newer.append(p)
    return newer if prev == GENESIS else None


@dataclass
class VerifyResult:
    ok: bool
    lines: int = 0
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class AuditLog:
    def __init__(self, path: Path, state_dir: Path):
        self.path = Path(path)
        self.state_dir = Path(state_dir)
        self.lock_path = self.state_dir / "audit.lock"
        self.head_path = self.state_dir / "audit.head"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the append lock (writers wait): for consistent copies of the log and its head."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _prev_hash(self) -> str:
        last = _read_last_line(self.path)
        if last is None:
            rotated = rotated_files(self.path)
            return last_hash(rotated[-1]) if rotated else GENESIS
        return _hash_of(last)

    def _read_head(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.head_path.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _write_head(self, last_hash: str) -> None:
        tmp = self.head_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"hash": last_hash}))
        os.replace(tmp, self.head_path)

    def append(self, event: str, actor: str = "", target: str = "", success: bool = True,
               ip: str = "", user_agent: str = "", detail: Any = None,
               ts: datetime | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {
            "ts": (ts or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "event": str(event),
            "actor": str(actor or ""),
            "target": str(target or ""),
            "success": bool(success),
            "ip": str(ip or ""),
            "user_agent": str(user_agent or "")[:300],
            "detail": detail if detail is None or isinstance(detail, (str, int, float, bool, dict, list)) else str(detail),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.locked():
            prev = self._prev_hash()
            record["prev"] = prev
            record["hash"] = _line_hash(prev, record)
            line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                if _ends_without_newline(self.path):
                    # a torn last line (crash, disk full): start a new line so this record stays readable
                    line = b"\n" + line
                written = os.write(fd, line)
                if written != len(line):  # pragma: no cover - disk full
                    raise OSError("escritura incompleta en el registro de auditoría")
            finally:
                os.close(fd)
            self._write_head(record["hash"])
        return record

    def reset_head(self) -> None:
        """Re-anchor the tail after a restore (the restored files become the truth)."""
        with self.locked():
            self._write_head(self._prev_hash())

    def files(self) -> list[Path]:
        out = rotated_files(self.path)
        if self.path.exists():
            out.append(self.path)
        return out

    def verify(self) -> VerifyResult:
        result = VerifyResult(ok=True)
        prev = None
        files = self.files()
        for p in files:
            result.files.append(p.name)
            try:
                with _open_text(p) as f:
                    for lineno, raw in enumerate(f, start=1):
                        result.lines += 1
                        where = f"{p.name}:{lineno}"
                        try:
                            rec = json.loads(raw)
                            stored = rec["hash"]
                            rec_prev = rec["prev"]
                        except (ValueError, KeyError, TypeError):
                            result.problems.append(f"{where}: línea ilegible o sin hash")
                            prev = hashlib.sha256(raw.rstrip("\n").encode()).hexdigest()
                            continue
                        if prev is not None and rec_prev != prev:
                            result.problems.append(f"{where}: la cadena se rompe (falta o se eliminó una línea anterior)")
                        elif prev is None and rec_prev != GENESIS and p == files[0] and len(files) == 1:
                            result.problems.append(f"{where}: el archivo no comienza la cadena (se eliminaron líneas iniciales)")
                        if _line_hash(rec_prev, rec) != stored:
                            result.problems.append(f"{where}: el contenido fue modificado")
                        prev = stored
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                result.problems.append(f"{p.name}: no se pudo leer ({exc})")
        head = self._read_head()
        if head is not None:
            if prev is None and head.get("hash") not in (None, GENESIS):
                result.problems.append("el registro está vacío pero se esperaban líneas (archivo truncado o eliminado)")
            elif prev is not None and head.get("hash") != prev:
                result.problems.append("faltan líneas al final del registro (archivo truncado)")
        result.ok = not result.problems
        return result

    def iter_records(self, include_rotated: bool = False) -> Iterator[dict[str, Any]]:
        for p in (self.files() if include_rotated else [self.path]):
            if not p.exists():
                continue
            with _open_text(p) as f:
                for raw in f:
                    try:
                        yield json.loads(raw)
                    except ValueError:
                        continue


def append_event(settings, event: str, **kw) -> dict[str, Any]:
    """Append one event to the instance's audit log (see AuditLog.append)."""
    return AuditLog(settings.paths.audit_log, settings.paths.run_dir).append(event, **kw)
