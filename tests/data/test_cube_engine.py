"""The numpy cube engine: every rollup the cube may pick gives the student-row answer (hypothesis),
selections (slices, row numbers), derived rollups, fallbacks, caches and dropdown options."""

import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from visualizador_emtp.data import catalog
from visualizador_emtp.data.cube import (ALL, BASE_DIMS, DERIVED_ROLLUPS, DIM_TYPES, MEASURES, ROLLUPS,
                                         SCHOOL_ATTRS, Cube, Filters, _rollup, build_cube)
from visualizador_emtp.data.cube_engine import EMPTY_ROWS, RollupIndex, selected_rows

from .test_cube import CUBE, ROWS, STUDENTS, _direct, by_st, filters_st

TABLES = build_cube(ROWS)

# A third year made of part of 2024 (so that years 2023 and 2025 are not contiguous).
_OLD = ROWS.filter(pc.and_(pc.equal(ROWS["AGNO"], 2024), pc.less(ROWS["RBD"], 12000)))
_I = _OLD.schema.get_field_index("AGNO")
ROWS3 = pa.concat_tables([_OLD.set_column(_I, _OLD.schema.field(_I), pa.array(np.full(len(_OLD), 2023),
                                                                                _OLD.schema.field(_I).type)),
                          ROWS])
CUBE3 = Cube(build_cube(ROWS3))
STUDENTS3 = ROWS3.append_column(
    "TIPO", pa.array(np.where(ROWS3["COD_ENSE"].to_numpy() % 100 == 63, 2, 1).astype(np.int8)))

years3_st = st.lists(st.sampled_from([2023, 2024, 2025]), max_size=3).map(tuple)


def _expected_count(students: pa.Table, f: Filters, by: list[str]) -> pa.Table:
    t = students
    for dim, vals in f.constraints().items():
        t = t.filter(pc.is_in(t[dim], pa.array(vals).cast(t[dim].type)))
    if not by:
        return t
    return (t.group_by(by).aggregate([("MRUN", "count"), ("RBD", "count_distinct")])
            .sort_by([(d, "ascending") for d in by]))


def _answers(cube: Cube, f: Filters, by: list[str], **kw):
    """(rollup name, count table, schools table or None) for every rollup covering the query."""
    cons = f.constraints()
    out = []
    for r in cube._covering(set(by) | set(cons)):
        sel = r.select(cons)
        cnt = r.group_sum(sel, by, ["n", "n_dual"], DIM_TYPES, **kw)
        sch = r.distinct(sel, by, "RBD", DIM_TYPES, **kw) if "RBD" in r.dims else None
        out.append((r.name, cnt, sch))
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(f=filters_st, by=by_st, dense=st.booleans())
def test_every_covering_rollup_gives_the_student_answer(f, by, dense):
    direct = _direct(f)
    exp = _expected_count(STUDENTS, f, by)
    for name, cnt, sch in _answers(CUBE, f, by, **({} if dense else {"dense_max": 0})):
        assert cnt.column_names == by + ["n", "n_dual"], name
        assert cnt.schema.field("n").type == pa.int64()
        for d in by:
            assert cnt.schema.field(d).type == DIM_TYPES[d], (name, d)
        if by:
            assert cnt.select(by).to_pylist() == exp.select(by).to_pylist(), name
            assert cnt["n"].to_pylist() == exp["MRUN_count"].to_pylist(), name
            if sch is not None:
                assert sch.column_names == by + ["schools"]
                assert sch.select(by).to_pylist() == exp.select(by).to_pylist(), name
                assert sch["schools"].to_pylist() == exp["RBD_count_distinct"].to_pylist(), name
        else:
            assert cnt["n"].to_pylist() == [len(direct)], name
            if sch is not None:
                assert sch["schools"].to_pylist() == [len(set(direct["RBD"].to_pylist()))], name


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(f=filters_st, years=years3_st, by=by_st)
def test_year_slices_and_non_contiguous_years(f, years, by):
    f = f.replace(years=years)
    exp = _expected_count(STUDENTS3, f, by)
    got = CUBE3.count(f, by)
    sch = CUBE3.schools(f, by)
    if by:
        assert got.select(by).to_pylist() == exp.select(by).to_pylist()
        assert got["n"].to_pylist() == exp["MRUN_count"].to_pylist()
        assert sch["schools"].to_pylist() == exp["RBD_count_distinct"].to_pylist()
    else:
        assert got["n"].to_pylist() == [len(exp)]
        assert sch["schools"].to_pylist() == [len(set(exp["RBD"].to_pylist()))]


def test_selection_kinds():
    r = CUBE3._rollups["escuela"]
    assert r.select({}) is None
    assert r.select({"AGNO": (2023, 2024, 2025)}) is None            # keeps every row
    s = r.select({"AGNO": (2024, 2025)})
    assert isinstance(s, slice) and selected_rows(s, r.rows) == int(np.isin(r.codes["AGNO"][r.pos["AGNO"]],
                                                                          [2024, 2025]).sum())
    rows = r.select({"AGNO": (2023, 2025)})                           # not contiguous: row numbers
    assert isinstance(rows, np.ndarray) and set(r.codes["AGNO"][r.pos["AGNO"][rows]]) == {2023, 2025}
    rows = r.select({"AGNO": (2025,), "GEN_ALU": (2,), "COD_REG_RBD": (13, 5, 8, 9, 1)})
    assert np.all(np.diff(rows) > 0) and np.all(r.codes["GEN_ALU"][r.pos["GEN_ALU"][rows]] == 2)
    assert r.select({"AGNO": (1999,)}) is EMPTY_ROWS
    com = int(CUBE3.count(Filters(regions=(1,)), ["COD_COM_RBD"])["COD_COM_RBD"][0].as_py())  # a comuna of Tarapacá
    assert len(r.select({"COD_COM_RBD": (com,)})) > 0
    assert len(r.select({"COD_REG_RBD": (13,), "COD_COM_RBD": (com,)})) == 0  # not in the RM
    f = Filters(regions=(13,), comunas=(com,))
    assert CUBE3.count(f, ["AGNO"]).num_rows == 0 and CUBE3.count(f, ["AGNO"]).schema == \
        pa.schema([("AGNO", pa.int16()), ("n", pa.int64())])
    assert CUBE3.count(f)["n"].to_pylist() == [0]
    assert CUBE3.schools(f)["schools"].to_pylist() == [0]
    assert CUBE3.school_table(f).num_rows == 0


def test_unsorted_rollups_are_sorted_on_load():
    rng = np.random.default_rng(3)
    shuffled = {k: (v.take(pa.array(rng.permutation(len(v)))) if k.startswith("cube_") else v)
                for k, v in TABLES.items()}
    c = Cube(shuffled)
    for f in (Filters(years=(2025,)), Filters(years=(2024,), regions=(13,)), Filters(sectores=(520,))):
        for by in (["COD_REG_RBD"], ["AGNO", "GEN_ALU"], []):
            assert c.count(f, by, MEASURES).equals(CUBE.count(f, by, MEASURES))
            assert c.schools(f, by).equals(CUBE.schools(f, by))


@pytest.mark.parametrize("name", list(DERIVED_ROLLUPS))
@pytest.mark.parametrize("key_limit", [1 << 62, 64])
def test_derived_rollup_equals_pyarrow_rollup(name, key_limit):
    parent, dims = DERIVED_ROLLUPS[name]
    r = RollupIndex.derive(CUBE._rollups[parent], name, dims, key_limit=key_limit)
    exp = _rollup(TABLES[f"cube_{parent}"], dims)
    got = pa.table({**{d: pa.array(r.codes[d][r.pos[d]], DIM_TYPES[d]) for d in dims},
                    **{m: pa.array(r.meas[m].astype(np.int64)) for m in MEASURES}})
    assert got.equals(exp)
    assert r.rows < CUBE._rollups[parent].rows


def test_derived_rollup_is_picked_for_school_counts_under_sector_filters():
    c = Cube(TABLES)
    assert c._pick({"RBD", "AGNO", "COD_SEC"}).name == "escuela_oferta"
    assert c._pick({"RBD", "AGNO", "GEN_ALU"}).name == "escuela_min"
    assert c._pick({"RBD", "COD_ESPE", "GEN_ALU"}).name == "escuela"
    with pytest.raises(ValueError):
        c._pick({"NOPE"})


def test_rollups_cover_their_declared_dimensions():
    for name, dims in ROLLUPS.items():
        assert CUBE._rollups[name].dims == frozenset(dims)
    assert set(DERIVED_ROLLUPS["escuela_oferta"][1]) >= {"RBD", *SCHOOL_ATTRS}
    # every rollup shares one codes array per dimension
    for r in CUBE._rollups.values():
        for d in r.dims:
            assert r.codes[d] is CUBE._codes[d]


queries_st = st.lists(st.tuples(st.sampled_from(["count", "schools"]), by_st), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(f=filters_st, queries=queries_st)
def test_cached_selections_do_not_change_answers(f, queries):
    """The rollup picked depends on the selections already cached; the answers must not."""
    warm = Cube(TABLES)
    warm.ROWS_CACHE_BYTES = 40_000  # tiny: exercises eviction too
    for kind, by in queries:
        got = getattr(warm, kind)(f, by)
        warm._cache.clear()  # keep the selections, drop the results
        assert got.equals(getattr(CUBE, kind)(f, by))
        assert warm._rows_bytes <= warm.ROWS_CACHE_BYTES or len(warm._rows_cache) == 1


def _school_table_reference(f: Filters, years: tuple[int, ...]) -> list[dict]:
    t = _direct(f)
    out = {}
    for r in t.select(["RBD", "COD_ESPE", "GEN_ALU", "AGNO", "COD_DES_CUR"]).to_pylist():
        a = out.setdefault(r["RBD"], {"RBD": r["RBD"], "especialidades": set(), "n": 0, "hombres": 0, "mujeres": 0,
                                      "n_dual": 0, **{f"n_{y}": 0 for y in years}})
        a["n"] += 1
        a["hombres"] += r["GEN_ALU"] == 1
        a["mujeres"] += r["GEN_ALU"] == 2
        a["n_dual"] += r["COD_DES_CUR"] == 2
        if f"n_{r['AGNO']}" in a:
            a[f"n_{r['AGNO']}"] += 1
        if r["COD_ESPE"]:
            a["especialidades"].add(r["COD_ESPE"])
    rows = sorted(out.values(), key=lambda a: (-a["n"], a["RBD"]))
    for a in rows:
        a["especialidades"] = sorted(a["especialidades"])
    return rows


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(f=filters_st)
def test_school_table_matches_student_rows(f):
    got = CUBE.school_table(f)
    years = tuple(y for y in (f.years or CUBE.years) if y in CUBE.years)
    assert got.column_names == ["RBD", "NOM_RBD", "COD_COM_RBD", "NOM_COM_RBD", "COD_REG_RBD", "COD_DEPE2",
                                "RURAL_RBD", "especialidades", "n", "hombres", "mujeres", "n_dual",
                                *[f"n_{y}" for y in years]]
    assert got.schema.field("especialidades").type == pa.list_(pa.int32())
    keep = ["RBD", "especialidades", "n", "hombres", "mujeres", "n_dual", *[f"n_{y}" for y in years]]
    assert got.select(keep).to_pylist() == _school_table_reference(f, years)
    names = dict(zip(CUBE.schools_dir["RBD"].to_pylist(), CUBE.schools_dir["NOM_RBD"].to_pylist()))
    assert got["NOM_RBD"].to_pylist() == [names[r] for r in got["RBD"].to_pylist()]


def test_school_detail_matches_student_rows():
    rbd = CUBE.school_table(Filters(years=(2025,)))["RBD"][3].as_py()
    d = CUBE.school_detail(rbd)
    mine = STUDENTS.filter(pc.equal(STUDENTS["RBD"], rbd))
    for a in d["anios"]:
        y = mine.filter(pc.equal(mine["AGNO"], a["AGNO"]))
        assert a["n"] == len(y)
        assert a["mujeres"] == int(pc.sum(pc.equal(y["GEN_ALU"], 2)).as_py() or 0)
        assert a["n_dual"] == int(pc.sum(pc.equal(y["COD_DES_CUR"], 2)).as_py() or 0)
        assert a["edad_media"] == pytest.approx(y["EDAD_ALU"].drop_null().to_numpy().mean())
    exp = mine.group_by(["AGNO", "COD_ESPE", "TIPO"]).aggregate([("MRUN", "count")]).sort_by(
        [("AGNO", "ascending"), ("COD_ESPE", "ascending"), ("TIPO", "ascending")])
    assert [(e["AGNO"], e["COD_ESPE"], e["TIPO"], e["n"]) for e in d["especialidades"]] == \
        [tuple(r.values()) for r in exp.to_pylist()]


def _options_reference(cube: Cube, f: Filters) -> dict:
    """The dropdowns as the pyarrow implementation computed them (from count())."""
    def present(dim, narrow=ALL):
        return [int(x) for x in cube.count(narrow, [dim]).column(dim).to_pylist()]

    regions = sorted(present("COD_REG_RBD"), key=catalog.region_order)
    comunas = present("COD_COM_RBD", Filters(regions=f.regions))
    comunas.sort(key=lambda c: (catalog.region_order(catalog.comuna_region(c) or 0), catalog.comuna_name(c) or ""))
    tipo_code = catalog.TIPO_CODES.get(f.tipo or "", None)
    return {
        "anio": [(y, str(y)) for y in cube.years],
        "region": [(c, catalog.label("COD_REG_RBD", c)) for c in regions],
        "comuna": [(c, catalog.label("COD_COM_RBD", c)) for c in comunas],
        "dependencia": [(c, catalog.label("COD_DEPE2", c)) for c in present("COD_DEPE2")],
        "zona": [("urbano" if c == 0 else "rural", catalog.ZONAS[c]) for c in present("RURAL_RBD")],
        "rama": [(c, catalog.label("COD_RAMA", c)) for c in present("COD_RAMA") if c],
        "sector": [(c, catalog.label("COD_SEC", c)) for c in present("COD_SEC", Filters(ramas=f.ramas)) if c],
        "especialidad": sorted(((c, catalog.label("COD_ESPE", c))
                                for c in present("COD_ESPE", Filters(ramas=f.ramas, sectores=f.sectores)) if c),
                               key=lambda x: x[1]),
        "genero": [("hombre", "Hombre"), ("mujer", "Mujer")],
        "grado": [(g, catalog.grado_name(g, tipo_code) or str(g)) for g in present("COD_GRADO", Filters(tipo=f.tipo))],
        "tipo": [("jovenes", "Jóvenes"), ("adultos", "Adultos")],
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(f=filters_st)
def test_options_match_counts(f):
    c = Cube(TABLES)
    assert c.options(f) == _options_reference(c, f)


def test_concurrent_queries_agree():
    c = Cube(TABLES)
    fs = [Filters(years=(2025,)), Filters(regions=(13,)), Filters(sectores=(520, 530)), Filters(generos=(2,)),
          Filters(years=(2024,), tipo="adultos")]
    bys = [[], ["AGNO"], ["COD_REG_RBD", "GEN_ALU"], ["COD_COM_RBD"], ["COD_ESPE"]]
    expected = {(f, tuple(b)): (CUBE.count(f, b), CUBE.schools(f, b)) for f in fs for b in bys}
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(200):
            f, b = fs[rng.integers(len(fs))], bys[rng.integers(len(bys))]
            if rng.random() < 0.2:
                c.clear_cache()
            if not (c.count(f, b).equals(expected[(f, tuple(b))][0])
                    and c.schools(f, b).equals(expected[(f, tuple(b))][1])):
                errors.append((f, b))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_clear_cache_and_memory_are_modest():
    c = Cube(TABLES)
    c.kpis(Filters(regions=(13,)))
    assert c._cache and c._rows_cache
    c.clear_cache()
    assert not c._cache and not c._rows_cache and c._rows_bytes == 0
    base_bytes = sum(t.nbytes for k, t in TABLES.items() if k.startswith("cube_"))
    assert c.nbytes < base_bytes  # positions (1-2 bytes) + float64 measures < the arrow tables
    assert BASE_DIMS[0] == "AGNO"


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(-200, 100_000), max_size=300),
       dtype=st.sampled_from([np.int16, np.int32, np.int64]), wide=st.booleans())
def test_factorize_matches_unique(values, dtype, wide):
    from visualizador_emtp.data.cube_engine import factorize
    arr = np.array(values + ([2**40] if wide and dtype == np.int64 else []), dtype=np.int64)
    if dtype == np.int16:
        arr = arr.clip(-32768, 32767)
    arr = arr.astype(dtype)
    codes, pos = factorize(arr)
    assert codes.dtype == arr.dtype and pos.dtype.kind == "u"
    assert np.array_equal(codes, np.unique(arr))
    assert np.array_equal(codes[pos], arr)
