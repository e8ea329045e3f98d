"""Precomputed counts ("cube") and the query API used by the dashboards.

A refresh builds, from the student rows, a school-level cube: one row per
AGNO × RBD × region × comuna × dependencia × rural × enseñanza × tipo × grado × rama ×
sector × especialidad × género with the measures ``n`` (students), ``n_dual``
(COD_DES_CUR = 2), ``edad_sum`` and ``edad_n`` (for the mean age). Smaller rollups are
derived from it (published files, plus ``DERIVED_ROLLUPS`` summed when a version is loaded),
so a dashboard request never scans student rows. Number of schools = distinct RBD with
n > 0 after filtering (always answered from a rollup that keeps RBD).

Queries run on numpy (``cube_engine.RollupIndex``): the rows a selection keeps in a rollup
are computed once per (rollup, filters) and reused by the ~11 queries of a page; group-bys
are ``np.bincount`` on combined keys. Each query uses the covering rollup that is cheapest to
answer from (fewest rows to scan, or fewest already-selected rows); all give the same sums.

Public API (stable, used by web/ and charts/)::

    Filters(years=(2024, 2025), regions=(13,), ...)          # empty tuple = no filter
    Filters.from_query(request.args) -> (Filters, warnings_es)
    Filters.to_query() -> [("anio", "2018-2025"), ("region", "13"), ...]
    get_cube(processed_dir) -> Cube | None                     # raises DataUnavailable
    cube.count(filters, by=["AGNO", "GEN_ALU"]) -> pa.Table     # by + ["n"]
    cube.count(filters, by, measures=("n", "n_dual"))          # extra measures
    cube.schools(filters, by=["AGNO"]) -> pa.Table              # by + ["schools"]
    cube.kpis(filters) -> dict
    cube.school_table(filters) -> pa.Table
    cube.school_detail(rbd) -> dict | None
    cube.options(filters) -> dict[str, list[tuple[int | str, str]]]
    cube.years, cube.manifest, cube.version

Dimension names (usable in ``by``): AGNO, RBD, COD_REG_RBD, COD_COM_RBD, COD_DEPE,
COD_DEPE2, RURAL_RBD, COD_ENSE, TIPO (1 jóvenes, 2 adultos), COD_GRADO, COD_RAMA,
COD_SEC, COD_ESPE, GEN_ALU. Results are sorted by ``by`` (numeric codes; use
``catalog.region_order`` / ``catalog.label`` for display).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from visualizador_emtp.data import catalog, store
from visualizador_emtp.data.cube_engine import (EMPTY_ROWS, RollupIndex, Selection, arrow_array, column_numpy,
                                                empty_table, selected_rows, selection_nbytes)

# ----------------------------------------------------------------------------------------
# Dimensions, measures, rollups
# ----------------------------------------------------------------------------------------
DIM_TYPES: dict[str, pa.DataType] = {
    "AGNO": pa.int16(),
    "RBD": pa.int32(),
    "COD_REG_RBD": pa.int8(),
    "COD_COM_RBD": pa.int32(),
    "COD_DEPE": pa.int8(),
    "COD_DEPE2": pa.int8(),
    "RURAL_RBD": pa.int8(),
    "COD_ENSE": pa.int16(),
    "TIPO": pa.int8(),
    "COD_GRADO": pa.int8(),
    "COD_RAMA": pa.int16(),
    "COD_SEC": pa.int16(),
    "COD_ESPE": pa.int32(),
    "GEN_ALU": pa.int8(),
}
BASE_DIMS: tuple[str, ...] = tuple(DIM_TYPES)
MEASURES: tuple[str, ...] = ("n", "n_dual", "edad_sum", "edad_n")
MEASURE_TYPES = {"n": pa.int64(), "n_dual": pa.int64(), "edad_sum": pa.int64(), "edad_n": pa.int64()}
SCHOOL_ATTRS = ("COD_REG_RBD", "COD_COM_RBD", "COD_DEPE", "COD_DEPE2", "RURAL_RBD")

# name -> dims. "escuela" is the base (all dims); the others are derived from it.
ROLLUPS: dict[str, tuple[str, ...]] = {
    "escuela": BASE_DIMS,
    "escuela_min": ("AGNO", "RBD", *SCHOOL_ATTRS, "TIPO", "COD_GRADO", "GEN_ALU"),
    "escuela_anio": ("AGNO", "RBD", *SCHOOL_ATTRS, "TIPO"),
    "completo": tuple(d for d in BASE_DIMS if d != "RBD"),
    "region": ("AGNO", "COD_REG_RBD", "COD_DEPE2", "RURAL_RBD", "COD_ENSE", "TIPO", "COD_GRADO",
               "COD_RAMA", "COD_SEC", "COD_ESPE", "GEN_ALU"),
    "especialidad": ("AGNO", "COD_ENSE", "TIPO", "COD_GRADO", "COD_RAMA", "COD_SEC", "COD_ESPE", "GEN_ALU"),
    "resumen": ("AGNO", "COD_REG_RBD", "COD_DEPE2", "RURAL_RBD", "TIPO", "COD_GRADO", "GEN_ALU"),
    "anio": ("AGNO", "TIPO", "COD_GRADO", "GEN_ALU"),
}
# Rollups summed from a published one when a version is loaded (no file; name -> (parent, dims)).
# "escuela_oferta" drops grade, gender and enseñanza: four times smaller than "escuela", it answers
# school counts and territorial counts under sector/specialty filters.
DERIVED_ROLLUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "escuela_oferta": ("escuela", ("AGNO", "RBD", *SCHOOL_ATTRS, "TIPO", "COD_RAMA", "COD_SEC", "COD_ESPE")),
}
SCHOOLS_COLUMNS = ("RBD", "NOM_RBD", "COD_COM_RBD", "NOM_COM_RBD", "COD_REG_RBD", "COD_DEPE", "COD_DEPE2",
                   "RURAL_RBD", "AGNO")

FILTER_DIMS: dict[str, str] = {
    "years": "AGNO",
    "regions": "COD_REG_RBD",
    "comunas": "COD_COM_RBD",
    "dependencias": "COD_DEPE2",
    "rural": "RURAL_RBD",
    "ramas": "COD_RAMA",
    "sectores": "COD_SEC",
    "especialidades": "COD_ESPE",
    "generos": "GEN_ALU",
    "grados": "COD_GRADO",
    "tipo": "TIPO",
}


class DataUnavailable(Exception):
    """Published data exists but cannot be read. ``str(exc)`` is a plain Spanish message."""


# ----------------------------------------------------------------------------------------
# Filters
# ----------------------------------------------------------------------------------------
MAX_VALUES = 400        # more values than this in one parameter: the parameter is ignored
MAX_VALUE_LEN = 24
_QUERY_LABELS = {
    "anio": "año", "region": "región", "comuna": "comuna", "dependencia": "dependencia", "zona": "zona",
    "rama": "rama", "sector": "sector", "especialidad": "especialidad", "genero": "género", "grado": "grado",
    "tipo": "tipo",
}


def _norm(text: str) -> str:
    t = text.strip().lower()
    for a, b in (("á", "a"), ("é", "e"), ("í", "i"), ("ó", "o"), ("ú", "u"), ("ñ", "n")):
        t = t.replace(a, b)
    return t


def _getlist(args: Any, name: str) -> list[str]:
    if args is None:
        return []
    if hasattr(args, "getlist"):
        raw = args.getlist(name)
    elif isinstance(args, Mapping):
        v = args.get(name)
        raw = [] if v is None else (list(v) if isinstance(v, (list, tuple)) else [v])
    else:  # iterable of (key, value)
        raw = [v for k, v in args if k == name]
    out: list[str] = []
    for v in raw:
        out.extend(p for p in str(v).split(",") if p.strip() != "")
    return out


@dataclass(frozen=True)
class Filters:
    """A dashboard selection. Empty tuples / None mean "all"."""

    years: tuple[int, ...] = ()
    regions: tuple[int, ...] = ()
    comunas: tuple[int, ...] = ()
    dependencias: tuple[int, ...] = ()   # COD_DEPE2
    rural: int | None = None             # 0 urbano, 1 rural
    ramas: tuple[int, ...] = ()
    sectores: tuple[int, ...] = ()
    especialidades: tuple[int, ...] = ()
    generos: tuple[int, ...] = ()        # 1 hombre, 2 mujer
    grados: tuple[int, ...] = ()         # COD_GRADO
    tipo: str | None = None              # "jovenes" | "adultos"

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (list, set, frozenset)):
                object.__setattr__(self, f.name, tuple(sorted(int(x) for x in v)))
            elif isinstance(v, tuple):
                object.__setattr__(self, f.name, tuple(sorted(set(int(x) for x in v))))
        if self.tipo is not None and self.tipo not in catalog.TIPO_CODES:
            raise ValueError(f"tipo inválido: {self.tipo!r}")
        if self.rural not in (None, 0, 1):
            raise ValueError(f"rural inválido: {self.rural!r}")

    # -- constraints as {dim: tuple of codes} ----------------------------------------------
    def constraints(self) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {}
        for attr, dim in FILTER_DIMS.items():
            v = getattr(self, attr)
            if attr == "rural":
                if v is not None:
                    out[dim] = (v,)
            elif attr == "tipo":
                if v is not None:
                    out[dim] = (catalog.TIPO_CODES[v],)
            elif v:
                out[dim] = v
        return out

    def replace(self, **changes) -> "Filters":
        from dataclasses import replace as _replace
        return _replace(self, **changes)

    @classmethod
    def from_query(cls, args: Any) -> tuple["Filters", list[str]]:
        """Parse URL arguments; invalid values are dropped with a Spanish warning each."""
        warnings: list[str] = []
        kw: dict[str, Any] = {}

        def values(name: str) -> list[str]:
            vals = _getlist(args, name)
            if len(vals) > MAX_VALUES:
                warnings.append(f"Se ignoró el filtro {_QUERY_LABELS[name]}: demasiados valores ({len(vals)}).")
                return []
            return vals

        def bad(name: str, value: str, why: str = "no es un código válido") -> None:
            shown = value if len(value) <= MAX_VALUE_LEN else value[:MAX_VALUE_LEN] + "…"
            warnings.append(f"Se ignoró el valor «{shown}» del filtro {_QUERY_LABELS[name]}: {why}.")

        def codes(name: str, valid: Iterable[int], aliases: Mapping[str, int] | None = None) -> tuple[int, ...]:
            valid = set(valid)
            out = []
            for raw in values(name):
                v = raw.strip()
                if len(v) > MAX_VALUE_LEN:
                    bad(name, v)
                    continue
                if aliases and _norm(v) in aliases:
                    out.append(aliases[_norm(v)])
                    continue
                if re.fullmatch(r"-?\d{1,9}", v) and int(v) in valid:
                    out.append(int(v))
                else:
                    bad(name, v)
            return tuple(sorted(set(out)))

        years: set[int] = set()
        for raw in values("anio"):
            v = raw.strip()
            m = re.fullmatch(r"(\d{4})\s*(?:-|–|\.\.)\s*(\d{4})", v)
            if m:
                a, b = int(m.group(1)), int(m.group(2))
                if a > b:
                    a, b = b, a
                if 2000 <= a and b <= 2100:
                    years.update(range(a, b + 1))
                else:
                    bad("anio", v, "fuera de rango")
            elif re.fullmatch(r"\d{4}", v) and 2000 <= int(v) <= 2100:
                years.add(int(v))
            else:
                bad("anio", v, "no es un año")
        kw["years"] = tuple(sorted(years))
        region_alias = {_norm(r.short): c for c, r in catalog.REGIONS.items()}
        kw["regions"] = codes("region", catalog.REGIONS, region_alias)
        kw["comunas"] = codes("comuna", catalog.comunas())
        kw["dependencias"] = codes("dependencia", catalog.DEPENDENCIAS2)
        zonas = codes("zona", (0, 1), {"urbano": 0, "urbana": 0, "rural": 1})
        kw["rural"] = zonas[0] if len(zonas) == 1 else None  # both = no filter
        kw["ramas"] = codes("rama", catalog.EMTP_RAMAS)
        kw["sectores"] = codes("sector", [c for c, s in catalog.SECTORES.items() if s.rama in catalog.EMTP_RAMAS])
        kw["especialidades"] = codes("especialidad", catalog.EMTP_ESPECIALIDADES)
        gen = codes("genero", (1, 2), {"hombre": 1, "hombres": 1, "h": 1, "mujer": 2, "mujeres": 2, "m": 2})
        kw["generos"] = gen if len(gen) == 1 else ()
        kw["grados"] = codes("grado", catalog.GRADOS)
        tipos = codes("tipo", (1, 2), {"jovenes": 1, "adultos": 2})
        kw["tipo"] = {1: "jovenes", 2: "adultos"}[tipos[0]] if len(tipos) == 1 else None
        return cls(**kw), warnings

    def to_query(self) -> list[tuple[str, str]]:
        """URL arguments that ``from_query`` turns back into these filters."""
        q: list[tuple[str, str]] = []
        ys = list(self.years)
        if ys:
            if len(ys) > 1 and ys == list(range(ys[0], ys[-1] + 1)):
                q.append(("anio", f"{ys[0]}-{ys[-1]}"))
            else:
                q.extend(("anio", str(y)) for y in ys)
        for attr, name in (("regions", "region"), ("comunas", "comuna"), ("dependencias", "dependencia")):
            q.extend((name, str(v)) for v in getattr(self, attr))
        if self.rural is not None:
            q.append(("zona", "rural" if self.rural == 1 else "urbano"))
        for attr, name in (("ramas", "rama"), ("sectores", "sector"), ("especialidades", "especialidad")):
            q.extend((name, str(v)) for v in getattr(self, attr))
        q.extend(("genero", "hombre" if g == 1 else "mujer") for g in self.generos)
        q.extend(("grado", str(g)) for g in self.grados)
        if self.tipo:
            q.append(("tipo", self.tipo))
        return q


ALL = Filters()


# ----------------------------------------------------------------------------------------
# Building (at refresh time)
# ----------------------------------------------------------------------------------------
def _base_from_batch(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    """Group one batch of canonical student rows into the base cube."""
    t = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    ense = t.column("COD_ENSE").to_numpy(zero_copy_only=False)
    tipo = pa.array(np.where(ense % 100 == 63, 2, 1).astype(np.int8))
    dual = t.column("COD_DES_CUR") if "COD_DES_CUR" in t.column_names else pa.nulls(len(t), pa.int8())
    edad = t.column("EDAD_ALU").cast(pa.int64())
    cols = {d: t.column(d).cast(DIM_TYPES[d]) for d in BASE_DIMS if d != "TIPO"}
    cols["TIPO"] = tipo
    cols["n"] = pa.array(np.ones(len(t), dtype=np.int64))
    cols["n_dual"] = pc.fill_null(pc.equal(dual, 2), False).cast(pa.int64())
    cols["edad_sum"] = pc.fill_null(edad, 0)
    cols["edad_n"] = pc.is_valid(edad).cast(pa.int64())
    tbl = pa.table(cols)
    return _rollup(tbl, BASE_DIMS)


def _rollup(t: pa.Table, dims: Iterable[str]) -> pa.Table:
    dims = list(dims)
    g = t.group_by(dims, use_threads=False).aggregate([(m, "sum") for m in MEASURES])
    g = g.rename_columns([c[:-4] if c.endswith("_sum") and c[:-4] in MEASURES else c for c in g.column_names])
    g = g.select(dims + list(MEASURES))
    return g.sort_by([(d, "ascending") for d in dims])


class CubeBuilder:
    """Accumulates the base cube and the school directory from streamed batches (bounded memory)."""

    COMPACT_ROWS = 1_000_000

    def __init__(self) -> None:
        self._parts: list[pa.Table] = []
        self._part_rows = 0
        self._schools: list[pa.Table] = []

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        if len(batch) == 0:
            return
        part = _base_from_batch(batch)
        self._parts.append(part)
        self._part_rows += len(part)
        t = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        s = t.select(list(SCHOOLS_COLUMNS)).group_by(list(SCHOOLS_COLUMNS), use_threads=False).aggregate([])
        self._schools.append(s)
        if self._part_rows > self.COMPACT_ROWS:
            merged = _rollup(pa.concat_tables(self._parts), BASE_DIMS)
            self._parts, self._part_rows = [merged], len(merged)
            self._schools = [pa.concat_tables(self._schools).group_by(list(SCHOOLS_COLUMNS),
                                                                      use_threads=False).aggregate([])]

    def finish(self) -> dict[str, pa.Table]:
        """{"cube_<rollup>": table, ..., "escuelas": table}."""
        if self._parts:
            base = _rollup(pa.concat_tables(self._parts), BASE_DIMS)
        else:
            base = pa.table({**{d: pa.array([], DIM_TYPES[d]) for d in BASE_DIMS},
                             **{m: pa.array([], MEASURE_TYPES[m]) for m in MEASURES}})
        out = {f"cube_{name}": (base if name == "escuela" else _rollup(base, dims))
               for name, dims in ROLLUPS.items()}
        if self._schools:
            s = pa.concat_tables(self._schools)
            # latest year wins; ties broken by name for determinism
            s = s.sort_by([("RBD", "ascending"), ("AGNO", "descending"), ("NOM_RBD", "ascending")])
            rbd = s.column("RBD").to_numpy()
            first = np.ones(len(rbd), dtype=bool)
            first[1:] = rbd[1:] != rbd[:-1]
            s = s.filter(pa.array(first)).rename_columns(
                [c if c != "AGNO" else "ULTIMO_AGNO" for c in s.column_names])
        else:
            s = pa.table({c: pa.array([], pa.string() if c.startswith("NOM") else pa.int32())
                          for c in SCHOOLS_COLUMNS}).rename_columns(
                [c if c != "AGNO" else "ULTIMO_AGNO" for c in SCHOOLS_COLUMNS])
        out["escuelas"] = s
        return out


def build_cube(table: pa.Table) -> dict[str, pa.Table]:
    b = CubeBuilder()
    for batch in table.to_batches(max_chunksize=500_000):
        b.add(batch)
    return b.finish()


# ----------------------------------------------------------------------------------------
# Querying
# ----------------------------------------------------------------------------------------
def _empty(by: list[str], measures: Iterable[str]) -> pa.Table:
    return empty_table(by, measures, DIM_TYPES)


class Cube:
    """An in-memory, immutable cube of one published version. Thread-safe for reads.

    Queries run on :class:`~visualizador_emtp.data.cube_engine.RollupIndex` (numpy): the rows
    a selection keeps in a rollup are computed once and reused (``ROWS_CACHE_BYTES``) by the
    ~11 queries of a dashboard page; results are cached too (``cache_size`` entries)."""

    ROWS_CACHE_BYTES = 8 << 20

    def __init__(self, tables: Mapping[str, pa.Table], manifest: Mapping[str, Any] | None = None,
                 version: str | None = None, cache_size: int = 1024):
        self._rollups = {name: RollupIndex(name, tables[f"cube_{name}"], ROLLUPS[name], MEASURES)
                         for name in ROLLUPS}
        for name, (parent, dims) in DERIVED_ROLLUPS.items():
            self._rollups[name] = RollupIndex.derive(self._rollups[parent], name, dims)
        # Every rollup sums the same base, so a dimension has the same codes in all of them: share
        # one array per dimension (less memory; constraint masks computed once for all rollups).
        self._codes: dict[str, np.ndarray] = {}
        for r in self._rollups.values():
            for d, codes in r.codes.items():
                canon = self._codes.setdefault(d, codes)
                if canon is not codes and np.array_equal(canon, codes):
                    r.codes[d] = canon
        # smallest first, so the first covering rollup is the cheapest
        self._order = sorted(self._rollups.values(), key=lambda r: r.rows)
        self.schools_dir: pa.Table = tables["escuelas"]
        self.manifest: dict[str, Any] = dict(manifest or {})
        self.version = version
        self.years: tuple[int, ...] = tuple(int(y) for y in self._rollups["anio"].codes["AGNO"])
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size
        self._rows_cache: OrderedDict = OrderedDict()
        self._rows_bytes = 0
        self._plans: dict[tuple, dict[str, tuple[np.ndarray, np.ndarray, int]]] = {}
        self._lock = threading.Lock()
        self._pick_cache: dict[frozenset, RollupIndex] = {}
        self._options_all: dict[str, list[tuple[int, str]]] | None = None
        self._option_lists()  # dropdown labels in display order, once per loaded version
        self._schools_idx = {int(r): i for i, r in enumerate(self.schools_dir.column("RBD").to_pylist())}

    @property
    def nbytes(self) -> int:
        """Bytes held by the query arrays (without the caches and the school directory)."""
        return sum(r.nbytes for r in self._order)

    def clear_cache(self) -> None:
        """Forget cached results and selections (benchmarks: measure cold queries)."""
        with self._lock:
            self._cache.clear()
            self._rows_cache.clear()
            self._rows_bytes = 0
            self._plans.clear()

    # -- helpers ----------------------------------------------------------------------------
    def _covering(self, need: set[str] | frozenset[str]) -> list[RollupIndex]:
        """Rollups holding every dimension in ``need``, smallest first."""
        need = frozenset(need)
        hit = self._pick_cache.get(need)
        if hit is None:
            hit = [r for r in self._order if need <= r.dims]
            if not hit:
                raise ValueError(f"Dimensiones desconocidas: {sorted(need - set(BASE_DIMS))}")
            self._pick_cache[need] = hit
        return hit

    def _pick(self, need: set[str] | frozenset[str]) -> RollupIndex:
        return self._covering(need)[0]

    def _cached(self, key, compute):
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        value = compute()
        with self._lock:
            self._cache[key] = value
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return value

    def _select(self, filters: Filters, need: Iterable[str]) -> tuple[RollupIndex, Selection]:
        return self._select_cons(filters.constraints(), need)

    def _select_cons(self, cons: dict[str, tuple[int, ...]],
                     need: Iterable[str]) -> tuple[RollupIndex, Selection]:
        """(rollup, selected rows) for a query needing the ``need`` dimensions under the
        constraints ``cons`` (``Filters.constraints()``).

        Picks the covering rollup that is cheapest to answer from: scanning a rollup costs
        its rows, reusing a selection already computed for these filters costs its selected
        rows. Any covering rollup gives the same (exact) answer."""
        cons_key = tuple(cons.items())
        best, best_cost, best_sel, cached = None, None, None, False
        with self._lock:
            plan = self._plans.get(cons_key)
            for r in self._covering(set(need) | set(cons)):
                key = (r.name, cons_key)
                if key in self._rows_cache:
                    sel = self._rows_cache[key]
                    cost, hit = selected_rows(sel, r.rows), True
                else:
                    sel, cost, hit = None, r.rows, False
                if best_cost is None or cost < best_cost:
                    best, best_cost, best_sel, cached = r, cost, sel, hit
            if cached:
                self._rows_cache.move_to_end((best.name, cons_key))
                return best, best_sel
        if plan is None:
            plan = {}
            for dim, vals in cons.items():
                codes = self._codes[dim]
                allowed = RollupIndex.mask_of(codes, vals)
                plan[dim] = (codes, allowed, int(np.count_nonzero(allowed)))
        sel = best.select(cons, plan)
        key = (best.name, cons_key)
        with self._lock:
            self._plans[cons_key] = plan
            while len(self._plans) > 256:
                self._plans.pop(next(iter(self._plans)))
            if key not in self._rows_cache:
                self._rows_cache[key] = sel
                self._rows_bytes += selection_nbytes(sel)
                while self._rows_bytes > self.ROWS_CACHE_BYTES and len(self._rows_cache) > 1:
                    _, old = self._rows_cache.popitem(last=False)
                    self._rows_bytes -= selection_nbytes(old)
        return best, sel

    @staticmethod
    def _check_by(by: Iterable[str]) -> list[str]:
        by = list(by)
        unknown = [d for d in by if d not in DIM_TYPES]
        if unknown:
            raise ValueError(f"Dimensiones desconocidas: {unknown}")
        return by

    # -- public queries -----------------------------------------------------------------------
    def count(self, filters: Filters = ALL, by: Iterable[str] = (),
              measures: Iterable[str] = ("n",)) -> pa.Table:
        """Students (and other measures) by the given dimensions; columns = by + measures.
        Without ``by`` the result is always one row (0 when nothing matches)."""
        by = self._check_by(by)
        measures = list(measures)
        bad = [m for m in measures if m not in MEASURES]
        if bad:
            raise ValueError(f"Medidas desconocidas: {bad}")
        key = ("count", filters, tuple(by), tuple(measures))
        return self._cached(key, lambda: self._count(filters, by, measures))

    def _count(self, filters: Filters, by: list[str], measures: list[str]) -> pa.Table:
        r, rows = self._select(filters, by)
        return r.group_sum(rows, by, measures, DIM_TYPES)

    def schools(self, filters: Filters = ALL, by: Iterable[str] = ()) -> pa.Table:
        """Distinct schools (RBD with n > 0 after filtering) by dims; columns = by + ["schools"]."""
        by = self._check_by(by)
        return self._cached(("schools", filters, tuple(by)), lambda: self._schools(filters, by))

    def _schools(self, filters: Filters, by: list[str]) -> pa.Table:
        r, rows = self._select(filters, [*by, "RBD"])
        return r.distinct(rows, by, "RBD", DIM_TYPES)

    def kpis(self, filters: Filters = ALL) -> dict[str, Any]:
        """Headline numbers for the KPI cards (percentages 0–100, None when undefined)."""
        return self._cached(("kpis", filters), lambda: self._kpis(filters))

    def _kpis(self, filters: Filters) -> dict[str, Any]:
        by_g = self.count(filters, ["TIPO", "GEN_ALU"], MEASURES)
        col = {c: column_numpy(by_g, c) for c in by_g.column_names}
        tot = {m: int(col[m].sum()) for m in MEASURES}
        tipo, gen, n = col["TIPO"], col["GEN_ALU"], col["n"]
        hombres, mujeres = int(n[gen == 1].sum()), int(n[gen == 2].sum())
        jovenes, adultos = int(n[tipo == 1].sum()), int(n[tipo == 2].sum())
        dual_j = int(col["n_dual"][tipo == 1].sum())
        total = tot["n"]
        by_year = self.count(filters, ["AGNO"])
        ys = by_year.column("AGNO").to_pylist()
        ns = by_year.column("n").to_pylist()
        last = ys[-1] if ys else None
        var = None
        if len(ys) >= 2 and ys[-2] == ys[-1] - 1 and ns[-2]:
            var = 100.0 * (ns[-1] - ns[-2]) / ns[-2]
        espe = self.count(filters, ["COD_ESPE"])
        n_espe = sum(1 for c in espe.column("COD_ESPE").to_pylist() if c)
        return {
            "total": total,
            "hombres": hombres,
            "mujeres": mujeres,
            "pct_mujeres": (100.0 * mujeres / (hombres + mujeres)) if hombres + mujeres else None,
            "jovenes": jovenes,
            "adultos": adultos,
            "establecimientos": int(self.schools(filters).column("schools")[0].as_py() or 0),
            "especialidades": n_espe,
            "n_dual": tot["n_dual"],
            "pct_dual": (100.0 * dual_j / jovenes) if jovenes else None,
            "edad_media": (tot["edad_sum"] / tot["edad_n"]) if tot["edad_n"] else None,
            "anios": ys,
            "ultimo_anio": last,
            "total_ultimo_anio": ns[-1] if ns else 0,
            "variacion_pct": var,
        }

    def school_table(self, filters: Filters = ALL) -> pa.Table:
        """One row per school with n > 0: RBD, NOM_RBD, comuna, region, dependencia, rural,
        ``especialidades`` (list of COD_ESPE offered, 0 excluded), n, hombres, mujeres, n_dual,
        and ``n_<AGNO>`` for every year present. Sorted by n descending, then RBD."""
        return self._cached(("school_table", filters), lambda: self._school_table(filters))

    def _school_table(self, filters: Filters) -> pa.Table:
        r, rows = self._select(filters, {"RBD", "COD_ESPE", "GEN_ALU", "AGNO"})

        def pos(d):
            return r.pos[d] if rows is None else r.pos[d][rows]

        def meas(m):
            return r.meas[m] if rows is None else r.meas[m][rows]

        k_rbd = len(r.codes["RBD"])
        rbd_pos = pos("RBD").astype(np.intp)
        present = np.flatnonzero(np.bincount(rbd_pos, minlength=k_rbd))
        k = len(present)
        uniq = r.codes["RBD"][present]
        lut = np.full(k_rbd, -1, dtype=np.intp)
        lut[present] = np.arange(k)
        inv = lut[rbd_pos]
        cols: dict[str, Any] = {"RBD": arrow_array(uniq, pa.int32())}
        sd = self.schools_dir
        idx = np.array([self._schools_idx.get(int(x), -1) for x in uniq], dtype=np.int64)
        for c in ("NOM_RBD", "COD_COM_RBD", "NOM_COM_RBD", "COD_REG_RBD", "COD_DEPE2", "RURAL_RBD"):
            cols[c] = sd.column(c).take(arrow_array(idx, pa.int64()))
        # specialties offered (distinct non-zero COD_ESPE per school, ascending)
        espe_codes = r.codes["COD_ESPE"]
        k_espe = len(espe_codes)
        pairs = np.flatnonzero(np.bincount(rbd_pos * k_espe + pos("COD_ESPE"), minlength=k_rbd * k_espe))
        espe = espe_codes[pairs % k_espe]
        keep = espe != 0
        school_of = lut[pairs // k_espe][keep]
        offsets = np.searchsorted(school_of, np.arange(k + 1))
        cols["especialidades"] = pa.ListArray.from_arrays(arrow_array(offsets, pa.int32()),
                                                          arrow_array(espe[keep], pa.int32()))

        def total(w):
            return arrow_array(np.rint(np.bincount(inv, weights=w, minlength=k)).astype(np.int64), pa.int64())

        n = meas("n")
        gen = r.codes["GEN_ALU"][pos("GEN_ALU")]
        cols["n"] = total(n)
        cols["hombres"] = total(n * (gen == 1))
        cols["mujeres"] = total(n * (gen == 2))
        cols["n_dual"] = total(meas("n_dual"))
        agno = r.codes["AGNO"][pos("AGNO")]
        for y in (filters.years or self.years):
            if y in self.years:
                cols[f"n_{y}"] = total(n * (agno == y))
        out = pa.table(cols)
        return out.sort_by([("n", "descending"), ("RBD", "ascending")])

    def school_detail(self, rbd: int) -> dict[str, Any] | None:
        """Everything the school sheet shows, or None when the RBD has no EMTP enrollment."""
        try:
            rbd = int(rbd)
        except (TypeError, ValueError):
            return None
        i = self._schools_idx.get(rbd)
        if i is None:
            return None
        row = {c: self.schools_dir.column(c)[i].as_py() for c in self.schools_dir.column_names}
        r = self._rollups["escuela"]
        codes = r.codes["RBD"]
        p = int(np.searchsorted(codes, rbd))
        rows = np.flatnonzero(r.pos["RBD"] == p) if p < len(codes) and codes[p] == rbd else EMPTY_ROWS
        by_year = r.group_sum(rows, ["AGNO", "GEN_ALU"], MEASURES, DIM_TYPES)
        years: dict[int, dict[str, Any]] = {}
        for rec in by_year.to_pylist():
            y = years.setdefault(rec["AGNO"], {"AGNO": rec["AGNO"], "n": 0, "hombres": 0, "mujeres": 0,
                                               "n_dual": 0, "edad_sum": 0, "edad_n": 0})
            y["n"] += rec["n"]
            y["n_dual"] += rec["n_dual"]
            y["edad_sum"] += rec["edad_sum"]
            y["edad_n"] += rec["edad_n"]
            if rec["GEN_ALU"] == 1:
                y["hombres"] += rec["n"]
            elif rec["GEN_ALU"] == 2:
                y["mujeres"] += rec["n"]
        anios = []
        for y in sorted(years):
            d = years[y]
            d["edad_media"] = d.pop("edad_sum") / d["edad_n"] if d["edad_n"] else None
            d.pop("edad_n")
            anios.append(d)
        espe = r.group_sum(rows, ["AGNO", "COD_ESPE", "TIPO"], MEASURES, DIM_TYPES)
        return {
            **row,
            "NOM_REG_RBD": catalog.region_name(row["COD_REG_RBD"]),
            "DEPENDENCIA": catalog.dependencia2_name(row["COD_DEPE2"]),
            "ZONA": catalog.ZONAS.get(row["RURAL_RBD"]),
            "anios": anios,
            "especialidades": [
                {"AGNO": e["AGNO"], "COD_ESPE": e["COD_ESPE"], "TIPO": e["TIPO"],
                 "nombre": catalog.especialidad_name(e["COD_ESPE"]), "n": e["n"], "n_dual": e["n_dual"]}
                for e in espe.to_pylist()
            ],
        }

    def options(self, filters: Filters = ALL) -> dict[str, list[tuple[Any, str]]]:
        """Values for the filter dropdowns, (code, label) pairs, only codes present in the data.
        Comunas narrow to the selected regions; sectores to the selected ramas; especialidades to
        the selected sectores/ramas; grados to the selected tipo."""
        key = ("options", filters.regions, filters.ramas, filters.sectores, filters.tipo)
        return self._cached(key, lambda: self._options(filters))

    def _option_lists(self) -> dict[str, list[tuple[int, str]]]:
        """(code, label) of every code in the cube per dropdown, in display order (built once)."""
        if self._options_all is None:
            def codes(dim: str) -> list[int]:
                return [int(c) for c in self._pick({dim}).codes[dim]]

            def labelled(dim: str, cs: Iterable[int]) -> list[tuple[int, str]]:
                return [(c, catalog.label(dim, c)) for c in cs]

            com = sorted(codes("COD_COM_RBD"), key=lambda c: (catalog.region_order(catalog.comuna_region(c) or 0),
                                                               catalog.comuna_name(c) or ""))
            self._options_all = {
                "COD_REG_RBD": labelled("COD_REG_RBD", sorted(codes("COD_REG_RBD"), key=catalog.region_order)),
                "COD_COM_RBD": labelled("COD_COM_RBD", com),
                "COD_DEPE2": labelled("COD_DEPE2", codes("COD_DEPE2")),
                "RURAL_RBD": [(c, catalog.ZONAS[c]) for c in codes("RURAL_RBD")],
                "COD_RAMA": labelled("COD_RAMA", [c for c in codes("COD_RAMA") if c]),
                "COD_SEC": labelled("COD_SEC", [c for c in codes("COD_SEC") if c]),
                "COD_ESPE": sorted(labelled("COD_ESPE", [c for c in codes("COD_ESPE") if c]), key=lambda x: x[1]),
                "COD_GRADO": [(c, "") for c in codes("COD_GRADO")],
            }
        return self._options_all

    def _options(self, f: Filters) -> dict[str, list[tuple[Any, str]]]:
        everything = self._option_lists()

        def present(dim: str, narrow: dict[str, tuple[int, ...]] | None = None) -> list[tuple[int, str]]:
            """The (code, label) pairs of ``dim`` present under the constraints ``narrow``, in display order."""
            full = everything[dim]
            if not narrow:
                return full
            r, rows = self._select_cons(narrow, [dim])
            if rows is None:  # every row of a rollup: every code of the cube
                return full
            keep = set(r.present(rows, dim).tolist())
            return [x for x in full if x[0] in keep]

        def only(**dims: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
            """Constraints of a Filters with just these dimensions (same order as constraints())."""
            return {d: v for d, v in dims.items() if v}

        tipo_code = catalog.TIPO_CODES.get(f.tipo or "", None)
        return {
            "anio": [(y, str(y)) for y in self.years],
            "region": present("COD_REG_RBD"),
            "comuna": present("COD_COM_RBD", only(COD_REG_RBD=f.regions)),
            "dependencia": present("COD_DEPE2"),
            "zona": [("urbano" if c == 0 else "rural", z) for c, z in present("RURAL_RBD")],
            "rama": present("COD_RAMA"),
            "sector": present("COD_SEC", only(COD_RAMA=f.ramas)),
            "especialidad": present("COD_ESPE", only(COD_RAMA=f.ramas, COD_SEC=f.sectores)),
            "genero": [("hombre", "Hombre"), ("mujer", "Mujer")],
            "grado": [(g, catalog.grado_name(g, tipo_code) or str(g))
                      for g, _ in present("COD_GRADO", only(TIPO=(tipo_code,) if tipo_code else ()))],
            "tipo": [("jovenes", "Jóvenes"), ("adultos", "Adultos")],
        }


# ----------------------------------------------------------------------------------------
# Loading the published version (per-process cache, hot reload)
# ----------------------------------------------------------------------------------------
CHECK_INTERVAL = 1.0


@dataclass
class _Slot:
    checked: float = 0.0
    target: str | None = None
    cube: Cube | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_SLOTS: dict[str, _Slot] = {}
_SLOTS_LOCK = threading.Lock()


def load_cube(version_dir: Path) -> Cube:
    """Read one version's cube files, verifying their checksums; DataUnavailable on any damage."""
    version_dir = Path(version_dir)
    try:
        manifest = store.read_manifest(version_dir)
    except store.StoreError as exc:
        raise DataUnavailable(f"{exc} Ejecute 'emtp-admin refresh --rollback' o 'emtp-admin refresh'.") from None
    files = manifest.get("files", {})
    tables: dict[str, pa.Table] = {}
    for name in [f"cube_{r}" for r in ROLLUPS] + ["escuelas"]:
        fname = f"{name}.parquet"
        path = version_dir / fname
        info = files.get(fname)
        if info is None or not path.is_file():
            raise DataUnavailable(f"Falta el archivo de datos {path}. Ejecute 'emtp-admin refresh'.")
        try:
            data = path.read_bytes()
            import hashlib
            if hashlib.sha256(data).hexdigest() != info.get("sha256"):
                raise DataUnavailable(f"El archivo de datos {path} está dañado (suma de verificación distinta). "
                                      f"Ejecute 'emtp-admin refresh --rollback' o 'emtp-admin refresh'.")
            # ParquetFile, not pq.read_table: the latter imports pandas (~50 MB per web worker)
            tables[name] = pq.ParquetFile(pa.BufferReader(data)).read()
        except DataUnavailable:
            raise
        except (OSError, pa.ArrowException) as exc:
            raise DataUnavailable(f"No se pudo leer el archivo de datos {path} ({exc}). "
                                  f"Ejecute 'emtp-admin refresh --rollback' o 'emtp-admin refresh'.") from None
    cube = Cube(tables, manifest, version_dir.name)
    del tables, data
    # the decoded parquet is no longer referenced (the cube keeps numpy arrays): give it back
    pa.default_memory_pool().release_unused()
    return cube


def get_cube(processed_dir: str | os.PathLike) -> Cube | None:
    """The cube of the published version, cached per process.

    Checks the ``current`` pointer at most once per second and reloads when a refresh or a
    rollback published another version, so the web app never needs a restart. Returns None
    when nothing was published yet; raises DataUnavailable (Spanish message) when the
    published data cannot be read.
    """
    key = str(processed_dir)
    with _SLOTS_LOCK:
        slot = _SLOTS.setdefault(key, _Slot())
    now = time.monotonic()
    if slot.cube is not None and now - slot.checked < CHECK_INTERVAL:
        return slot.cube
    with slot.lock:
        now = time.monotonic()
        if slot.cube is not None and now - slot.checked < CHECK_INTERVAL:
            return slot.cube
        try:
            target = store.current_target(Path(processed_dir))
        except store.StoreError as exc:
            raise DataUnavailable(f"{exc} Ejecute 'emtp-admin refresh'.") from None
        if target is None:
            slot.cube, slot.target, slot.checked = None, None, now
            return None
        if slot.cube is not None and target == slot.target:
            slot.checked = now
            return slot.cube
        vdir = store.versions_dir(Path(processed_dir)) / target
        if not vdir.is_dir():
            raise DataUnavailable(f"La versión publicada {target} no existe en {processed_dir}. "
                                  f"Ejecute 'emtp-admin refresh --rollback' o 'emtp-admin refresh'.")
        cube = load_cube(vdir)
        slot.cube, slot.target, slot.checked = cube, target, time.monotonic()
        return cube


def clear_cache() -> None:
    """Forget every loaded cube (tests)."""
    with _SLOTS_LOCK:
        _SLOTS.clear()
