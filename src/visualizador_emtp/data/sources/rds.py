"""R extracts: .rds (one data.frame) or .RData/.rda (the data.frame with most schema columns).

Real extracts from R pipelines carry lowercase (janitor-style) names, doubles for codes,
strings for RBD/comuna codes, factors, NA and many derived columns: names are matched
case-insensitively, extra columns are ignored (and listed in ``notes``), values are coerced.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa

from visualizador_emtp.data.coerce import SourceError, column_map
from visualizador_emtp.data.sources import Source, files_in

BATCH_ROWS = 200_000


def _read_r(path: Path):
    import rdata

    suffix = path.suffix.lower()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if suffix == ".rds":
                obj = rdata.read_rds(path)
                return obj
            objs = rdata.read_rda(path)
    except Exception as exc:  # rdata raises many kinds (ValueError, NotImplementedError, EOFError…)
        raise SourceError(f"El archivo {path} no es un archivo R (.rds/.RData) válido o está dañado "
                          f"({exc.__class__.__name__}: {exc}).") from None
    frames = {k: v for k, v in objs.items() if hasattr(v, "columns")}
    if not frames:
        raise SourceError(f"El archivo {path} no contiene ningún data.frame.")
    return max(frames.values(), key=lambda df: len(column_map([str(c) for c in df.columns])))


class RdsSource(Source):
    kind = "rds"

    def __init__(self, path: Path, batch_rows: int = BATCH_ROWS):
        self.path = Path(path)
        self.files = files_in(self.path, (".rds", ".rdata", ".rda"), ".rds/.RData")
        self.batch_rows = batch_rows
        self.notes: list[str] = []

    def describe(self) -> str:
        return f"rds: {self.path}"

    def batches(self):
        offset = 0
        for f in self.files:
            df = _read_r(f)
            if not hasattr(df, "columns"):
                raise SourceError(f"El archivo {f} no contiene un data.frame (contiene {type(df).__name__}).")
            df.columns = [str(c) for c in df.columns]
            cmap = column_map(list(df.columns))
            extra = [c for c in df.columns if c not in set(cmap.values())]
            if extra:
                shown = ", ".join(extra[:12]) + (" …" if len(extra) > 12 else "")
                self.notes.append(f"{f.name}: {len(extra)} columnas ignoradas ({shown})")
            df = df[list(cmap.values())]
            try:
                table = pa.Table.from_pandas(df, preserve_index=False)
            except (pa.ArrowException, TypeError, ValueError):
                # mixed-type object columns: fall back to text, coerce() reports bad values
                table = pa.Table.from_pandas(df.astype({c: "string" for c in df.columns
                                                        if df[c].dtype == object}), preserve_index=False)
            for start in range(0, len(table), self.batch_rows):
                t = table.slice(start, self.batch_rows)
                rows = np.arange(offset + start + 1, offset + start + len(t) + 1, dtype=np.int64)
                yield t, rows
            offset += len(table)
