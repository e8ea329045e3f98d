"""The vega + vega-lite + vega-embed browser bundle, generated offline with vl-convert.

Nothing is fetched from a CDN: ``vl_convert.javascript_bundle()`` builds the bundle from the
libraries vl-convert ships. It is generated on first use into a cache folder of the instance
(``data/cache/vega``), once, together with a gzip copy (≈300 KB instead of ≈900 KB), and
served under a URL that carries the library versions, so browsers can cache it for a year.
Writes are atomic (temp file + rename), so several gunicorn workers can race safely.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import vl_convert as vlc

_lock = threading.Lock()


@lru_cache(maxsize=1)
def version() -> str:
    """A short, URL-safe id of the bundle contents (library versions)."""
    vl = vlc.get_vegalite_versions()[-1]
    raw = f"vega{vlc.get_vega_version()}-vl{vl}-embed{vlc.get_vega_embed_version()}"
    return raw.replace(".", "_") + "-" + hashlib.sha256(raw.encode()).hexdigest()[:8]


def _writable(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return folder
    except OSError:
        fallback = Path(tempfile.gettempdir()) / f"visualizador-emtp-vega-{os.getuid()}"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def ensure(cache_dir: str | os.PathLike) -> tuple[Path, Path]:
    """(plain, gzipped) paths of the bundle, generating them if missing."""
    folder = _writable(Path(cache_dir))
    name = f"vega-{version()}.js"
    plain, packed = folder / name, folder / (name + ".gz")
    if plain.is_file() and packed.is_file():
        return plain, packed
    with _lock:
        if not (plain.is_file() and packed.is_file()):
            code = vlc.javascript_bundle().encode("utf-8")
            _atomic_write(plain, code)
            _atomic_write(packed, gzip.compress(code, compresslevel=9, mtime=0))
    return plain, packed
