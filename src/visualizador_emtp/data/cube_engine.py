"""In-memory query engine of one cube rollup (numpy, no pyarrow on the hot path).

Every dimension column of a rollup is stored as small integer *positions* into the sorted
array of its distinct codes (``uint8`` when a dimension has at most 256 codes, else
``uint16``/``int32``), and every measure in the smallest unsigned integer type holding it
(``np.bincount`` sums as float64: exact below 2**53; results are converted back to ``int64``).
Rows are kept sorted by year (AGNO), so a year or a range of years is a contiguous slice. Then:

* a selection (``select``) is ``None`` (every row), a ``slice`` or an array of row numbers;
  the cube computes it once per (rollup, constraints) and reuses it for every query of a
  dashboard page with the same filters;
* a group-by is ``np.bincount`` on a combined key (``ravel_multi_index`` order of the
  positions of the grouping dimensions); groups come out sorted by code, like ``sort_by``;
* a distinct count (schools) is a bincount over (group, RBD) pairs.

Every row of a rollup has ``n >= 1`` (it aggregates at least one student), so a group exists
after filtering exactly when it holds at least one selected row.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence, Union

import numpy as np
import pyarrow as pa

# a dense bincount over more groups than this (and more than 8x the rows) uses np.unique instead;
# ``dense_max=0`` always uses np.unique (tests)
DENSE_MAX = 1 << 22
# constraints with at most this many codes are tested with comparisons instead of a lookup
FEW_CODES = 3

EMPTY_ROWS = np.empty(0, dtype=np.intp)
Selection = Union[None, slice, np.ndarray]


def _pos_dtype(k: int) -> np.dtype:
    return np.dtype(np.uint8) if k <= 1 << 8 else np.dtype(np.uint16) if k <= 1 << 16 else np.dtype(np.int32)


_NUMPY_TYPES = {pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
                pa.uint8(): np.uint8, pa.uint16(): np.uint16, pa.uint32(): np.uint32, pa.uint64(): np.uint64,
                pa.float64(): np.float64}


_ARROW_TYPES = {pa_t: np_t for pa_t, np_t in _NUMPY_TYPES.items()}


def arrow_array(values, type_: pa.DataType) -> pa.Array:
    """A primitive Arrow array over a numpy array (no copy when the dtype already matches).
    Faster than ``pa.array`` and, unlike it, does not import pandas."""
    a = np.ascontiguousarray(values, dtype=_ARROW_TYPES[type_])
    return pa.Array.from_buffers(type_, len(a), [None, pa.py_buffer(a)])


def column_numpy(table: pa.Table, name: str) -> np.ndarray:
    """A column as numpy. Integer columns without nulls are read from the Arrow buffer directly:
    pyarrow's ``to_numpy`` imports pandas, which costs ~50 MB of memory in every web worker."""
    col = table.column(name)
    arr = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    dt = _NUMPY_TYPES.get(arr.type)
    if dt is not None and arr.null_count == 0:
        if len(arr) == 0:
            return np.empty(0, dtype=dt)
        size = np.dtype(dt).itemsize
        return np.frombuffer(arr.buffers()[1], dtype=dt, count=len(arr), offset=arr.offset * size)
    return arr.to_numpy(zero_copy_only=False)


def compact(values: np.ndarray) -> np.ndarray:
    """Integer measures in the smallest unsigned type holding them exactly (int64 if negative).
    np.bincount sums weights as float64 whatever their type, exactly below 2**53."""
    values = np.asarray(values)
    if len(values) and values.min() < 0:
        return values.astype(np.int64)
    top = int(values.max()) if len(values) else 0
    for dt in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dt).max:
            return values.astype(dt)
    return values.astype(np.int64)


def factorize(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct codes, position of each value in them as a small unsigned type).
    Integer codes spanning a small range are counted (linear time) instead of sorted."""
    if len(col) and col.dtype.kind in "iu":
        lo, hi = int(col.min()), int(col.max())
        if hi - lo <= 1 << 20:  # (dimension codes: years, RBD, comunas, specialties…)
            shifted = (col.astype(np.int64) - lo) if lo else col
            seen = np.bincount(shifted, minlength=hi - lo + 1) > 0
            codes = (np.flatnonzero(seen) + lo).astype(col.dtype)
            lut = (np.cumsum(seen) - 1).astype(_pos_dtype(len(codes)))
            return codes, lut[shifted]
    codes, inv = np.unique(col, return_inverse=True)
    return codes, inv.reshape(-1).astype(_pos_dtype(len(codes)))


def selected_rows(sel: Selection, total: int) -> int:
    if sel is None:
        return total
    if isinstance(sel, slice):
        return sel.stop - sel.start
    return len(sel)


def selection_nbytes(sel: Selection) -> int:
    return sel.nbytes if isinstance(sel, np.ndarray) else 0


class RollupIndex:
    """Positions of every dimension and compact integer measures of one rollup table."""

    __slots__ = ("name", "dims", "rows", "codes", "pos", "meas", "year_offsets", "nbytes")

    def __init__(self, name: str, table: pa.Table, dims: Sequence[str], measures: Sequence[str]):
        self.name = name
        self.dims = frozenset(dims)
        self.rows = len(table)
        self.codes: dict[str, np.ndarray] = {}
        self.pos: dict[str, np.ndarray] = {}
        self.meas: dict[str, np.ndarray] = {}
        order = None
        if "AGNO" in self.dims and self.rows > 1:
            agno = column_numpy(table, "AGNO")
            if np.any(agno[1:] < agno[:-1]):  # published rollups are sorted; others get sorted here
                order = np.argsort(agno, kind="stable")
        for d in dims:
            col = column_numpy(table, d)
            if order is not None:
                col = col[order]
            self.codes[d], self.pos[d] = factorize(col)
        for m in measures:
            col = column_numpy(table, m)
            self.meas[m] = compact(col if order is None else col[order])
        self.year_offsets = None
        if "AGNO" in self.dims:
            self.year_offsets = np.searchsorted(self.pos["AGNO"], np.arange(len(self.codes["AGNO"]) + 1))
        self.nbytes = sum(a.nbytes for a in (*self.codes.values(), *self.pos.values(), *self.meas.values()))

    @classmethod
    def derive(cls, parent: "RollupIndex", name: str, dims: Sequence[str],
               key_limit: int = 1 << 62) -> "RollupIndex":
        """A coarser rollup (a subset of the parent's dimensions) summed from the parent, in numpy.
        The combined key is re-numbered whenever it would reach ``key_limit``."""
        dims = list(dims)
        missing = [d for d in dims if d not in parent.dims]
        if missing:
            raise ValueError(f"{name}: dimensions {missing} not in {parent.name}")
        key = np.zeros(parent.rows, dtype=np.int64)
        span = 1
        for d in dims:  # first dimension most significant, as in the published rollups
            k = len(parent.codes[d])
            if span * k >= key_limit:  # re-number the groups seen so far to keep the key small
                uniq, inv = np.unique(key, return_inverse=True)
                key, span = inv.reshape(-1).astype(np.int64), len(uniq)
            key = key * k + parent.pos[d]
            span *= k
        uniq, inv = np.unique(key, return_inverse=True)
        inv = inv.reshape(-1)
        first = np.empty(len(uniq), dtype=np.intp)
        first[inv] = np.arange(parent.rows)
        self = cls.__new__(cls)
        self.name = name
        self.dims = frozenset(dims)
        self.rows = len(uniq)
        self.codes = {d: parent.codes[d] for d in dims}
        self.pos = {d: parent.pos[d][first] for d in dims}
        self.meas = {m: compact(np.rint(np.bincount(inv, weights=w, minlength=len(uniq))).astype(np.int64))
                     for m, w in parent.meas.items()}
        self.year_offsets = None
        if "AGNO" in self.dims:
            if dims[0] != "AGNO":
                raise ValueError(f"{name}: AGNO must be the first dimension")
            self.year_offsets = np.searchsorted(self.pos["AGNO"], np.arange(len(self.codes["AGNO"]) + 1))
        self.nbytes = sum(a.nbytes for a in (*self.pos.values(), *self.meas.values()))
        return self

    # -- filtering ----------------------------------------------------------------------------
    def allowed(self, dim: str, vals: Sequence[int]) -> np.ndarray:
        """Boolean array over the codes of ``dim``: True for the codes in ``vals``."""
        return self.mask_of(self.codes[dim], vals)

    @staticmethod
    def mask_of(codes: np.ndarray, vals: Sequence[int]) -> np.ndarray:
        """Boolean array over sorted ``codes``: True for the codes in ``vals``."""
        v = np.asarray(vals, dtype=np.int64)
        i = np.searchsorted(codes, v)
        ok = i < len(codes)
        i = i[ok]
        i = i[codes[i] == v[ok]]
        allowed = np.zeros(len(codes), dtype=bool)
        allowed[i] = True
        return allowed

    @staticmethod
    def _test(p: np.ndarray, allowed: np.ndarray, n_ok: int) -> np.ndarray:
        """Boolean mask of the positions ``p`` whose code is allowed."""
        if n_ok <= FEW_CODES:
            ok = np.flatnonzero(allowed)
            m = p == ok[0]
            for c in ok[1:]:
                m |= p == c
            return m
        if len(allowed) - n_ok <= FEW_CODES:
            out = np.flatnonzero(~allowed)
            m = p != out[0]
            for c in out[1:]:
                m &= p != c
            return m
        return allowed[p]

    def select(self, cons: Mapping[str, Sequence[int]],
               plan: Mapping[str, tuple[np.ndarray, np.ndarray, int]] | None = None) -> Selection:
        """Rows matching every constraint ({dim: codes}): None (every row), a slice or row numbers.

        ``plan`` may give, per dimension, (codes array, allowed mask over it, number allowed)
        computed once for several rollups sharing the same codes array."""
        tests = []
        base: Selection = None
        for dim, vals in cons.items():
            pre = plan.get(dim) if plan else None
            if pre is not None and pre[0] is self.codes[dim]:
                _, allowed, n_ok = pre
            else:
                allowed = self.allowed(dim, vals)
                n_ok = int(np.count_nonzero(allowed))
            if n_ok == len(allowed):
                continue  # the constraint keeps every row of this rollup
            if n_ok == 0:
                return EMPTY_ROWS
            if dim == "AGNO":
                ok = np.flatnonzero(allowed)
                if ok[-1] - ok[0] + 1 == n_ok:  # a run of years: a contiguous slice of rows
                    base = slice(int(self.year_offsets[ok[0]]), int(self.year_offsets[ok[-1] + 1]))
                    continue
            tests.append((n_ok / len(allowed), dim, allowed, n_ok))
        if not tests:
            return base
        tests.sort(key=lambda t: t[0])  # most selective first: later tests only see survivors
        rows: np.ndarray | None = None
        for _, dim, allowed, n_ok in tests:
            if rows is None:
                if base is None:
                    rows = np.flatnonzero(self._test(self.pos[dim], allowed, n_ok))
                else:
                    rows = np.flatnonzero(self._test(self.pos[dim][base], allowed, n_ok)) + base.start
            else:
                rows = rows[self._test(self.pos[dim][rows], allowed, n_ok)]
            if len(rows) == 0:
                return EMPTY_ROWS
        return rows

    # -- grouping -----------------------------------------------------------------------------
    def _take(self, a: np.ndarray, sel: Selection) -> np.ndarray:
        return a if sel is None else a[sel]

    def _key(self, sel: Selection, dims: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Combined group key of the selected rows (first dimension most significant)."""
        shape = [len(self.codes[d]) for d in dims]
        key = None
        for d, k in zip(dims, shape):
            p = self._take(self.pos[d], sel)
            if key is None:
                key = p.astype(np.intp)
            else:
                key *= k
                key += p
        return key, shape

    def _decode(self, gid: np.ndarray, dims: Sequence[str], shape: Sequence[int],
                types: Mapping[str, pa.DataType]) -> dict[str, pa.Array]:
        cols = {}
        for d, p in zip(dims, np.unravel_index(gid, shape)):
            cols[d] = arrow_array(self.codes[d][p], types[d])
        return cols

    def group_sum(self, sel: Selection, by: Sequence[str], measures: Sequence[str],
                  types: Mapping[str, pa.DataType], dense_max: int = DENSE_MAX) -> pa.Table:
        """Sums of ``measures`` by ``by`` over the selected rows; columns = by + measures, int64
        measures, sorted by ``by``; without ``by`` one row (zeros when nothing is selected)."""
        if not by:
            return pa.table({m: arrow_array([int(self._take(self.meas[m], sel).sum())], pa.int64())
                             for m in measures})
        n_rows = selected_rows(sel, self.rows)
        if n_rows == 0:
            return empty_table(by, measures, types)
        key, shape = self._key(sel, by)
        size = math.prod(shape)
        sums = {}
        if size <= max(dense_max, 8 * n_rows) and dense_max > 0:
            for m in measures:
                sums[m] = np.bincount(key, weights=self._take(self.meas[m], sel), minlength=size)
            # n >= 1 on every row: a group is present iff its n is positive
            present = sums["n"] > 0 if "n" in sums else np.bincount(key, minlength=size) > 0
            gid = np.flatnonzero(present)
            sums = {m: s[gid] for m, s in sums.items()}
        else:
            gid, inv = np.unique(key, return_inverse=True)
            inv = inv.reshape(-1)
            for m in measures:
                sums[m] = np.bincount(inv, weights=self._take(self.meas[m], sel), minlength=len(gid))
        cols = self._decode(gid, by, shape, types)
        for m in measures:
            cols[m] = arrow_array(np.rint(sums[m]).astype(np.int64), pa.int64())
        return pa.table(cols)

    def distinct(self, sel: Selection, by: Sequence[str], of: str,
                 types: Mapping[str, pa.DataType], dense_max: int = DENSE_MAX) -> pa.Table:
        """Number of distinct ``of`` codes by ``by`` over the selected rows; columns = by + ["schools"]."""
        n_rows = selected_rows(sel, self.rows)
        if n_rows == 0:
            if not by:
                return pa.table({"schools": arrow_array([0], pa.int64())})
            return empty_table(by, ["schools"], types)
        if not by:
            p = self._take(self.pos[of], sel)
            n = int(np.count_nonzero(np.bincount(p, minlength=len(self.codes[of]))))
            return pa.table({"schools": arrow_array([n], pa.int64())})
        key, shape = self._key(sel, [*by, of])
        size = math.prod(shape)
        k_of = shape[-1]
        if size <= max(dense_max, 8 * n_rows) and dense_max > 0:
            pairs = np.flatnonzero(np.bincount(key, minlength=size))
        else:
            pairs = np.unique(key)
        groups = pairs // k_of
        g_size = size // k_of
        if g_size <= max(dense_max, 8 * len(groups)) and dense_max > 0:
            counts = np.bincount(groups, minlength=g_size)
            gid = np.flatnonzero(counts)
            counts = counts[gid]
        else:
            gid, counts = np.unique(groups, return_counts=True)
        cols = self._decode(gid, by, shape[:-1], types)
        cols["schools"] = arrow_array(counts, pa.int64())
        return pa.table(cols)

    def present(self, sel: Selection, dim: str) -> np.ndarray:
        """Sorted distinct codes of ``dim`` among the selected rows."""
        codes = self.codes[dim]
        if sel is None:
            return codes
        if selected_rows(sel, self.rows) == 0:
            return codes[:0]
        return codes[np.flatnonzero(np.bincount(self.pos[dim][sel], minlength=len(codes)))]


def empty_table(by: Iterable[str], measures: Iterable[str], types: Mapping[str, pa.DataType]) -> pa.Table:
    return pa.table({**{d: arrow_array([], types[d]) for d in by},
                     **{m: arrow_array([], pa.int64()) for m in measures}})
