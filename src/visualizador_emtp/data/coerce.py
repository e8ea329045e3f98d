"""Map arbitrary source columns onto the canonical schema, reporting what cannot be coerced.

Sources differ: MINEDUC CSVs are text, SQL Server returns ints/decimals, R extracts carry
lowercase names, doubles for codes, strings for RBD/comuna and NA. ``coerce_table`` accepts
all of these; a value that cannot become the schema type is reported as a ``Problem`` (row,
column, value) and set to null, never silently changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from visualizador_emtp.data import catalog
from visualizador_emtp.data.schema import OPTIONAL, SCHEMA

NULL_TEXTS = ("", "NA", "N/A", "NULL", "NaN", "nan", "None", ".")
INT_RE = r"^\s*[+-]?\d+(\.0*)?\s*$"


@dataclass(frozen=True)
class Problem:
    row: int | None      # 1-based data row in the source (None = whole column)
    column: str
    value: str
    reason: str

    def message(self) -> str:
        where = f"fila {self.row:,}".replace(",", ".") if self.row is not None else "todas las filas"
        return f"{where}, columna {self.column}, valor «{self.value}»: {self.reason}"


class SourceError(Exception):
    """The source cannot be read at all (missing file, corrupt parquet, no connection…)."""

    def __init__(self, message: str, exit_code: int = 6):
        super().__init__(message)
        self.exit_code = exit_code


def _range_of(t: pa.DataType) -> tuple[int, int]:
    bits = t.bit_width
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _bad(rows: np.ndarray, values: list, column: str, reason: str, out: list[Problem], limit: int) -> None:
    for r, v in zip(rows[: max(0, limit - len(out))], values):
        out.append(Problem(int(r), column, str(v), reason))


def _to_int(arr: pa.ChunkedArray | pa.Array, target: pa.DataType, column: str, rownums: np.ndarray,
            problems: list[Problem], counter: list[int], limit: int) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type) if not pa.types.is_string(t.value_type) else arr.dictionary_decode()
        t = arr.type
    if pa.types.is_boolean(t):
        arr = arr.cast(pa.int8())
        t = arr.type
    if pa.types.is_decimal(t):
        arr = arr.cast(pa.float64())
        t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        s = pc.utf8_trim_whitespace(arr.cast(pa.string()))
        is_null = pc.or_(pc.is_null(s), pc.is_in(s, pa.array(NULL_TEXTS)))
        ok = pc.match_substring_regex(s, INT_RE)
        bad = pc.and_(pc.invert(is_null), pc.invert(pc.fill_null(ok, False)))
        bad_np = bad.to_numpy(zero_copy_only=False)
        if bad_np.any():
            idx = np.nonzero(bad_np)[0]
            counter[0] += len(idx)
            _bad(rownums[idx], s.take(pa.array(idx[:limit])).to_pylist(), column, "no es un número entero",
                 problems, limit)
        keep = pc.and_(pc.invert(is_null), pc.invert(bad))
        s = pc.if_else(keep, s, pa.scalar(None, pa.string()))
        s = pc.replace_substring_regex(s, r"\.0*$", "")
        s = pc.replace_substring_regex(s, r"^\+", "")
        arr = s.cast(pa.int64())
        t = arr.type
    elif pa.types.is_floating(t):
        f = arr.to_numpy(zero_copy_only=False).astype(np.float64)
        valid = ~np.isnan(f)
        frac = valid & (np.floor(f) != f)
        if frac.any():
            idx = np.nonzero(frac)[0]
            counter[0] += len(idx)
            _bad(rownums[idx], f[idx[:limit]].tolist(), column, "no es un número entero", problems, limit)
            valid &= ~frac
        big = valid & (np.abs(f) > 9.2e18)
        valid &= ~big
        arr = pa.array(np.where(valid, f, 0).astype(np.int64), mask=~valid)
        t = arr.type
    elif not pa.types.is_integer(t):
        if pa.types.is_null(t):
            return pa.nulls(len(arr), target)
        raise SourceError(f"La columna {column} tiene un tipo no convertible a número ({t}).", 4)
    # range of the compact type
    lo, hi = _range_of(target)
    v = arr.cast(pa.int64())
    vnp = v.to_numpy(zero_copy_only=False)
    valid = v.is_valid().to_numpy(zero_copy_only=False)
    vv = np.where(valid, np.nan_to_num(vnp.astype(np.float64)) if vnp.dtype.kind == "f" else vnp, 0)
    out = (vv < lo) | (vv > hi)
    out &= valid
    if out.any():
        idx = np.nonzero(out)[0]
        counter[0] += len(idx)
        _bad(rownums[idx], vv[idx[:limit]].tolist(), column, "fuera del rango admisible", problems, limit)
        v = pc.if_else(pa.array(~out), v, pa.scalar(None, pa.int64()))
    return v.cast(target)


def column_map(names: list[str]) -> dict[str, str]:
    """Canonical name -> source name, matched case-insensitively (and ignoring spaces/dots)."""
    norm = {}
    for n in names:
        key = n.strip().lower().replace(".", "_").replace(" ", "_")
        norm.setdefault(key, n)
    return {c: norm[c.lower()] for c in SCHEMA.names if c.lower() in norm}


def missing_required(names: list[str]) -> list[str]:
    """Required canonical columns neither present nor derivable."""
    present = set(column_map(names))
    derivable = {"COD_SEC": {"COD_ESPE"}, "COD_RAMA": {"COD_ENSE"}, "COD_DEPE2": {"COD_DEPE"}}
    missing = []
    for f in SCHEMA:
        if f.name in present or f.name in OPTIONAL:
            continue
        if f.name in derivable and derivable[f.name] <= present:
            continue
        missing.append(f.name)
    return missing


def coerce_table(t: pa.Table, rownums: np.ndarray, problems: list[Problem], counter: list[int],
                 limit: int = 200) -> pa.Table:
    """Canonical table from any source table. Appends Problems; counter[0] counts all bad values."""
    cmap = column_map(t.column_names)
    n = len(t)
    cols: dict[str, pa.Array] = {}
    for f in SCHEMA:
        src = cmap.get(f.name)
        if src is None:
            cols[f.name] = None
            continue
        a = t.column(src)
        if pa.types.is_string(f.type):
            a = a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
            if pa.types.is_dictionary(a.type):
                a = a.dictionary_decode()
            if pa.types.is_floating(a.type):
                a = _to_int(a, pa.int64(), f.name, rownums, problems, counter, limit)
            a = a.cast(pa.string())
            a = pc.if_else(pc.is_in(pc.utf8_trim_whitespace(a), pa.array(["NA"])), pa.scalar(None, pa.string()), a)
            cols[f.name] = a
        else:
            cols[f.name] = _to_int(a, f.type, f.name, rownums, problems, counter, limit)
    # derived columns
    if cols["COD_SEC"] is None and cols["COD_ESPE"] is not None:
        cols["COD_SEC"] = pc.divide(cols["COD_ESPE"].cast(pa.int64()), 100).cast(pa.int16())
    if cols["COD_RAMA"] is None and cols["COD_ENSE"] is not None:
        cols["COD_RAMA"] = pc.multiply(pc.divide(cols["COD_ENSE"].cast(pa.int64()), 100), 100).cast(pa.int16())
    if cols["COD_DEPE2"] is None and cols["COD_DEPE"] is not None:
        mapping = np.zeros(128, dtype=np.int64)
        for k, v in catalog.DEPE_TO_DEPE2.items():
            mapping[k] = v
        d = cols["COD_DEPE"].cast(pa.int64()).to_numpy(zero_copy_only=False)
        valid = cols["COD_DEPE"].is_valid().to_numpy(zero_copy_only=False)
        idx = np.where(valid & (np.nan_to_num(d) >= 0) & (np.nan_to_num(d) < 128), np.nan_to_num(d), 0).astype(int)
        cols["COD_DEPE2"] = pa.array(mapping[idx], pa.int8(), mask=~valid | (mapping[idx] == 0))
    arrays = []
    for f in SCHEMA:
        a = cols[f.name]
        if a is None:
            a = pa.nulls(n, f.type)
        arrays.append(a)
    relaxed = pa.schema([f.with_nullable(True) for f in SCHEMA])
    return pa.Table.from_arrays(arrays, schema=relaxed)
