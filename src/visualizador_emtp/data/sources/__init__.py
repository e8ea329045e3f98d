"""Data sources behind one interface: each yields raw tables plus their 1-based source row numbers.

``make_source(settings, kind, path)`` builds the reader named by ``--source`` / ``data.source``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from visualizador_emtp.data.coerce import SourceError

KINDS = ("sqlserver", "csv", "rds", "parquet")


class Source:
    """Base class. ``canonical`` sources yield tables already in the canonical schema."""

    kind: str = ""
    canonical: bool = False

    def describe(self) -> str:
        """Where the data comes from, safe to log (never contains credentials)."""
        raise NotImplementedError

    def batches(self) -> Iterator[tuple[pa.Table, np.ndarray]]:
        """Yield (table, 1-based source row numbers) in bounded chunks."""
        raise NotImplementedError

    notes: list[str]


def files_in(path: Path, suffixes: tuple[str, ...], what: str) -> list[Path]:
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        if not files:
            raise SourceError(f"La carpeta {path} no contiene archivos {what}.")
        return files
    if not path.exists():
        raise SourceError(f"No existe el archivo de origen {path}.")
    return [path]


def make_source(settings, kind: str, path: str | None = None) -> Source:
    kind = kind or settings["data.source"]
    if kind not in KINDS:
        raise SourceError(f"Fuente desconocida '{kind}': use {', '.join(KINDS)}.", 2)
    if kind == "sqlserver":
        from visualizador_emtp.data.sources.sqlserver import SqlServerSource
        return SqlServerSource(settings)
    raw = path or settings["data.source_path"]
    if not raw:
        raise SourceError(f"Indique el archivo o carpeta de origen con --path (o data.source_path) "
                          f"para la fuente {kind}.", 2)
    p = Path(raw)
    if not p.is_absolute() and not p.exists():
        p = settings.home / p
    if kind == "csv":
        from visualizador_emtp.data.sources.csv import CsvSource
        return CsvSource(p)
    if kind == "rds":
        from visualizador_emtp.data.sources.rds import RdsSource
        return RdsSource(p)
    from visualizador_emtp.data.sources.parquet import ParquetSource
    return ParquetSource(p)
