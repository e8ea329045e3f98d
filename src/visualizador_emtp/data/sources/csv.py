"""MINEDUC public CSV ("Matrícula por estudiante", Bases WEB): ';'-separated, UTF-8 or latin-1.

A national file has ~3.6M rows of every level: it is streamed block by block and the EMTP rule
is applied on the fly (working schools; youth 410-810 grades 3-4; adults x63 levels 1-4;
artistic excluded). Every column is read as text and coerced later, so text in a number
column is reported with its row instead of aborting the read.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from visualizador_emtp.data import catalog
from visualizador_emtp.data.coerce import INT_RE, SourceError, column_map
from visualizador_emtp.data.sources import Source, files_in

BLOCK_SIZE = 8 << 20


def detect_encoding(path: Path, chunk: int = 4 << 20) -> str:
    """'utf-8' when the whole file decodes as UTF-8, else 'latin-1' (MINEDUC files up to 2017)."""
    dec = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as f:
        try:
            while True:
                block = f.read(chunk)
                if not block:
                    dec.decode(b"", final=True)
                    return "utf-8"
                dec.decode(block)
        except UnicodeDecodeError:
            return "latin-1"


def _int_lenient(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    s = pc.utf8_trim_whitespace(arr)
    ok = pc.fill_null(pc.match_substring_regex(s, INT_RE), False)
    s = pc.replace_substring_regex(pc.if_else(ok, s, pa.scalar(None, pa.string())), r"\.0*$", "")
    return s.cast(pa.int64())


def emtp_mask(t: pa.Table) -> pa.Array:
    """The EMTP 3°-4° rule on a text table with MINEDUC column names (case-insensitive)."""
    names = {c.upper(): c for c in t.column_names}
    ense = _int_lenient(t.column(names["COD_ENSE"]))
    grado = _int_lenient(t.column(names["COD_GRADO"]))
    youth = pc.and_(pc.is_in(ense, pa.array(catalog.ENSE_JOVENES, pa.int64())),
                    pc.is_in(grado, pa.array(catalog.GRADOS_JOVENES, pa.int64())))
    adult = pc.and_(pc.is_in(ense, pa.array(catalog.ENSE_ADULTOS, pa.int64())),
                    pc.is_in(grado, pa.array(catalog.GRADOS_ADULTOS, pa.int64())))
    keep = pc.fill_null(pc.or_(youth, adult), False)
    if "ESTADO_ESTAB" in names:
        keep = pc.and_(keep, pc.fill_null(pc.equal(_int_lenient(t.column(names["ESTADO_ESTAB"])), 1), False))
    if "COD_SEC" in names:
        art = pc.fill_null(pc.is_in(_int_lenient(t.column(names["COD_SEC"])), pa.array([910, 920, 930], pa.int64())),
                           False)
        keep = pc.and_(keep, pc.invert(art))
    return keep


class CsvSource(Source):
    kind = "csv"

    def __init__(self, path: Path, apply_filter: bool = True):
        self.path = Path(path)
        self.files = files_in(self.path, (".csv", ".txt"), "CSV")
        self.apply_filter = apply_filter
        self.notes: list[str] = []
        self.rows_read = 0

    def describe(self) -> str:
        return f"csv: {self.path}"

    def _header(self, f: Path, encoding: str) -> list[str]:
        with open(f, "r", encoding=encoding, newline="") as fh:
            line = fh.readline()
        if not line.strip():
            raise SourceError(f"El archivo {f} está vacío o no tiene encabezado.")
        return [c.strip().strip('"').lstrip("\ufeff") for c in line.rstrip("\r\n").split(";")]

    def batches(self):
        for f in self.files:
            enc = detect_encoding(f)
            header = self._header(f, enc)
            if len(header) < 3:
                raise SourceError(f"El archivo {f} no parece un CSV separado por ';' (encabezado: "
                                  f"{';'.join(header)[:80]}).")
            for col in ("COD_ENSE", "COD_GRADO"):
                if col not in {h.upper() for h in header}:
                    raise SourceError(f"Falta la columna {col} en {f}: no es un archivo de matrícula por estudiante.", 4)
            self.notes.append(f"{f.name}: codificación {'UTF-8' if enc == 'utf-8' else 'latin-1'}")
            wanted = list(column_map(header).values())
            wanted += [h for h in header if h.upper() == "ESTADO_ESTAB"]
            try:
                reader = pacsv.open_csv(
                    f,
                    read_options=pacsv.ReadOptions(encoding=enc, block_size=BLOCK_SIZE, column_names=header,
                                                   skip_rows=1),
                    parse_options=pacsv.ParseOptions(delimiter=";"),
                    convert_options=pacsv.ConvertOptions(include_columns=wanted,
                                                         column_types={h: pa.string() for h in wanted},
                                                         strings_can_be_null=False),
                )
                offset = 0
                for batch in reader:
                    t = pa.Table.from_batches([batch])
                    rows = np.arange(offset + 1, offset + len(t) + 1, dtype=np.int64)
                    offset += len(t)
                    self.rows_read += len(t)
                    if self.apply_filter:
                        keep = emtp_mask(t)
                        t = t.filter(keep)
                        rows = rows[keep.to_numpy(zero_copy_only=False)]
                    if len(t):
                        yield t, rows
            except pa.ArrowInvalid as exc:
                raise SourceError(f"CSV malformado en {f}: {exc}.", 4) from None
            except OSError as exc:
                raise SourceError(f"No se pudo leer {f}: {exc}.") from None
