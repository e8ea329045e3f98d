"""Parquet files (one file or a folder of *.parquet), read in row batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from visualizador_emtp.data.coerce import SourceError, column_map
from visualizador_emtp.data.sources import Source, files_in

BATCH_ROWS = 200_000


class ParquetSource(Source):
    kind = "parquet"

    def __init__(self, path: Path, batch_rows: int = BATCH_ROWS):
        self.path = Path(path)
        self.files = files_in(self.path, (".parquet", ".pq"), "parquet")
        self.batch_rows = batch_rows
        self.notes: list[str] = []

    def describe(self) -> str:
        return f"parquet: {self.path}"

    def batches(self):
        offset = 0
        for f in self.files:
            try:
                pf = pq.ParquetFile(f)
                names = pf.schema_arrow.names
                cols = list(column_map(names).values())
                it = pf.iter_batches(batch_size=self.batch_rows, columns=cols)
                for b in it:
                    t = pa.Table.from_batches([b])
                    rows = np.arange(offset + 1, offset + len(t) + 1, dtype=np.int64)
                    offset += len(t)
                    yield t, rows
            except (OSError, pa.ArrowException) as exc:
                raise SourceError(f"El archivo {f} no es un parquet válido o está dañado/truncado ({exc}).") from None
