"""The processed-data store: immutable versions, a manifest each, and an atomic "current" pointer.

Layout under ``processed_dir`` (``EMTP_HOME/data/processed``)::

    current -> versions/20250602T020000Z-1a2b3c   (relative symlink, swapped with rename(2))
    versions/<id>/manifest.json                  rows per year, source, refresh time, sha256 of files
    versions/<id>/matricula_<AGNO>.parquet       student rows, one file per year (canonical schema)
    versions/<id>/cube_<rollup>.parquet          precomputed counts (see cube.py)
    versions/<id>/escuelas.parquet               one row per RBD (latest name, comuna, dependencia)
    .staging-<id>/                               a version being written (never served)

A version directory is complete before ``current`` points at it, so a reader (the web app)
sees either the previous version or the new one, never a half-written one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

CURRENT = "current"
VERSIONS = "versions"
MANIFEST = "manifest.json"
STAGING_PREFIX = ".staging-"


class StoreError(Exception):
    """A problem with the processed-data store; the message is Spanish, for the operator."""


def versions_dir(processed_dir: Path) -> Path:
    return Path(processed_dir) / VERSIONS


def current_target(processed_dir: Path) -> str | None:
    """The version id ``current`` points to, or None when there is no published data."""
    try:
        target = os.readlink(Path(processed_dir) / CURRENT)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # EINVAL: "current" exists but is not a symlink
        raise StoreError(f"{Path(processed_dir) / CURRENT} no es un enlace válido: {exc.strerror}.") from None
    return Path(target).name


def current_dir(processed_dir: Path) -> Path | None:
    vid = current_target(processed_dir)
    return versions_dir(processed_dir) / vid if vid else None


def list_versions(processed_dir: Path) -> list[str]:
    """Complete version ids (those with a manifest), oldest first."""
    d = versions_dir(processed_dir)
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if p.is_dir() and (p / MANIFEST).is_file())


def new_version_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-{os.urandom(3).hex()}"


def read_manifest(version_dir: Path) -> dict[str, Any]:
    path = Path(version_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"Falta el manifiesto {path}.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"El manifiesto {path} está dañado: {exc}.") from None


def current_manifest(processed_dir: Path) -> dict[str, Any] | None:
    d = current_dir(processed_dir)
    return read_manifest(d) if d else None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_durable(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def point_current(processed_dir: Path, vid: str) -> None:
    """Atomically make ``current`` point to ``versions/<vid>`` (symlink + rename + dir fsync)."""
    processed_dir = Path(processed_dir)
    if not (versions_dir(processed_dir) / vid / MANIFEST).is_file():
        raise StoreError(f"La versión {vid} no existe o está incompleta.")
    tmp = processed_dir / f".current-{os.getpid()}.tmp"
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    os.symlink(f"{VERSIONS}/{vid}", tmp)
    os.replace(tmp, processed_dir / CURRENT)
    fsync_path(processed_dir)


def remove_staging(processed_dir: Path) -> list[str]:
    """Delete leftovers of interrupted refreshes (call only while holding the refresh lock)."""
    removed = []
    processed_dir = Path(processed_dir)
    if not processed_dir.is_dir():
        return removed
    for p in processed_dir.iterdir():
        if p.name.startswith(STAGING_PREFIX) or (p.name.startswith(".current-") and p.name.endswith(".tmp")):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed


def prune(processed_dir: Path, keep_previous: int) -> list[str]:
    """Keep the current version plus the ``keep_previous`` newest others; delete the rest."""
    cur = current_target(processed_dir)
    others = [v for v in list_versions(processed_dir) if v != cur]
    doomed = others[:-keep_previous] if keep_previous > 0 else others
    for vid in doomed:
        shutil.rmtree(versions_dir(processed_dir) / vid, ignore_errors=True)
    # incomplete version dirs (no manifest) are garbage too
    d = versions_dir(processed_dir)
    if d.is_dir():
        for p in d.iterdir():
            if p.is_dir() and not (p / MANIFEST).exists() and p.name != cur:
                shutil.rmtree(p, ignore_errors=True)
    return doomed


def previous_version(processed_dir: Path) -> str | None:
    """The newest complete version older than the current one."""
    cur = current_target(processed_dir)
    older = [v for v in list_versions(processed_dir) if cur is None or v < cur]
    return older[-1] if older else None
