"""Small helpers shared by the ops commands: durable file writes, hashes, sizes, crash hooks."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
from pathlib import Path

from visualizador_emtp.fmt import miles

CRASH_ENV = "EMTP_TEST_CRASH_AT"


def crash_point(phase: str) -> None:
    """Tests only: when EMTP_TEST_CRASH_AT names this phase, the process SIGKILLs itself.

    Lets the test-suite prove that an interruption at any point leaves nothing that
    counts as a backup. Inert unless the variable is set.
    """
    wanted = os.environ.get(CRASH_ENV)
    if wanted and wanted == phase:
        os.kill(os.getpid(), signal.SIGKILL)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def copy_durable(src: Path, dst: Path, mode: int | None = None) -> None:
    """Copy bytes (no metadata but the mode), then fsync the copy."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(dst, flags, mode if mode is not None else 0o640)
    try:
        with open(src, "rb") as fin:
            while True:
                chunk = fin.read(1 << 20)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    if mode is not None:
        os.chmod(dst, mode)


def write_durable(path: Path, data: bytes, mode: int = 0o640) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Delete a directory so that an interruption never leaves it half-deleted under its name:
    rename it to a hidden name first, then remove."""
    hidden = path.with_name(f".del-{path.name}-{os.getpid()}")
    os.replace(path, hidden)
    fsync_dir(path.parent)
    shutil.rmtree(hidden, ignore_errors=True)


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def short_problem(text: str, keep: int = 2) -> str:
    """SQLite's integrity report can be hundreds of lines: keep the first ones and a count."""
    lines = [ln.strip() for ln in str(text).replace("; ", "\n").splitlines()
             if ln.strip() and ln.strip() != "*** in database main ***"]
    if len(lines) <= keep:
        return "; ".join(lines) or str(text)
    return "; ".join(lines[:keep]) + f" (y {miles(len(lines) - keep)} problema(s) más)"
