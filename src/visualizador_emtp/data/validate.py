"""Row-level validation of canonical batches before anything is published."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from visualizador_emtp.data import catalog
from visualizador_emtp.data.coerce import Problem
from visualizador_emtp.data.schema import RANGES, REQUIRED

CATALOG_COLUMNS = ("COD_REG_RBD", "COD_COM_RBD", "COD_DEPE", "COD_DEPE2", "RURAL_RBD", "COD_ENSE", "COD_GRADO",
                   "GEN_ALU", "COD_RAMA", "COD_SEC", "COD_ESPE", "COD_MEN", "COD_DES_CUR")
MAX_DROP = 0.20


def _report(mask: np.ndarray, t: pa.Table, column: str, rownums: np.ndarray, reason: str,
            problems: list[Problem], counter: list[int], limit: int) -> None:
    if not mask.any():
        return
    idx = np.nonzero(mask)[0]
    counter[0] += len(idx)
    room = max(0, limit - len(problems))
    if room:
        vals = t.column(column).take(pa.array(idx[:room])).to_pylist()
        for r, v in zip(rownums[idx[:room]], vals):
            problems.append(Problem(int(r), column, "" if v is None else str(v), reason))


def validate_batch(t: pa.Table, rownums: np.ndarray, problems: list[Problem], counter: list[int],
                   limit: int = 200) -> None:
    """Check nulls in keys, catalog codes, plausible ranges and code consistency."""
    nulls = {}
    for c in REQUIRED:
        m = t.column(c).is_null().to_numpy(zero_copy_only=False)
        nulls[c] = m
        _report(m, t, c, rownums, "valor vacío en una columna obligatoria", problems, counter, limit)
    arr = {c: t.column(c).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) for c in
           set(CATALOG_COLUMNS) | set(RANGES)}
    for c in CATALOG_COLUMNS:
        valid = t.column(c).is_valid().to_numpy(zero_copy_only=False)
        codes = np.fromiter(catalog.valid_codes(c), dtype=np.int64)
        bad = valid & ~np.isin(arr[c], codes)
        _report(bad, t, c, rownums, "código desconocido en el catálogo", problems, counter, limit)
    for c, (lo, hi) in RANGES.items():
        valid = t.column(c).is_valid().to_numpy(zero_copy_only=False)
        bad = valid & ((arr[c] < lo) | (arr[c] > hi))
        _report(bad, t, c, rownums, f"fuera del rango plausible ({lo}–{hi})", problems, counter, limit)
    ok = ~np.logical_or.reduce([nulls[c] for c in ("COD_ESPE", "COD_SEC", "COD_ENSE", "COD_RAMA", "COD_GRADO")])
    espe, sec, ense, rama, grado = (arr[c] for c in ("COD_ESPE", "COD_SEC", "COD_ENSE", "COD_RAMA", "COD_GRADO"))
    _report(ok & (espe != 0) & (espe // 100 != sec), t, "COD_SEC", rownums,
            "no corresponde a COD_ESPE (sector = especialidad // 100)", problems, counter, limit)
    _report(ok & (rama != (ense // 100) * 100), t, "COD_RAMA", rownums,
            "no corresponde a COD_ENSE (primer dígito)", problems, counter, limit)
    youth = np.isin(ense, catalog.ENSE_JOVENES)
    _report(ok & youth & ~np.isin(grado, catalog.GRADOS_JOVENES), t, "COD_GRADO", rownums,
            "grado fuera de la regla EMTP (jóvenes: 3° y 4° medio)", problems, counter, limit)
    com = arr["COD_COM_RBD"]
    reg = arr["COD_REG_RBD"]
    lut = _comuna_region_lut()
    inside = (com >= 0) & (com < len(lut))
    creg = np.where(inside, lut[np.where(inside, com, 0)], -1)
    _report((creg > 0) & (creg != reg) & ~nulls["COD_REG_RBD"], t, "COD_COM_RBD", rownums,
            "la comuna no pertenece a la región COD_REG_RBD", problems, counter, limit)


_LUT: np.ndarray | None = None


def _comuna_region_lut() -> np.ndarray:
    global _LUT
    if _LUT is None:
        lut = np.full(20_000, -1, dtype=np.int64)
        for code, c in catalog.comunas().items():
            lut[code] = c.region
        _LUT = lut
    return _LUT


def check_drop(new_rows: dict[int, int], old_rows: dict[int, int], max_drop: float = MAX_DROP) -> list[str]:
    """Spanish messages for each year whose row count fell more than ``max_drop`` (or vanished)."""
    from visualizador_emtp.fmt import miles, pct

    out = []
    for year, old in sorted(old_rows.items()):
        new = new_rows.get(year, 0)
        if old > 0 and new < old * (1 - max_drop):
            drop = 100.0 * (old - new) / old
            out.append(f"{year}: {miles(new)} filas frente a {miles(old)} de la versión vigente "
                       f"(caída de {pct(drop)})")
    return out
