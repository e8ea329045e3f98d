"""Cube answers equal a direct pyarrow computation on the student rows (hypothesis)."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from visualizador_emtp.data.cube import BASE_DIMS, Cube, Filters, build_cube

from .conftest import demo_table

ROWS = demo_table()
CUBE = Cube(build_cube(ROWS))
TIPO = pa.array(np.where(ROWS["COD_ENSE"].to_numpy() % 100 == 63, 2, 1).astype(np.int8))
STUDENTS = ROWS.append_column("TIPO", TIPO)


def _vals(col):
    return sorted(set(STUDENTS[col].to_pylist()))


filters_st = st.builds(
    Filters,
    years=st.lists(st.sampled_from([2024, 2025]), max_size=2).map(tuple),
    regions=st.lists(st.sampled_from(_vals("COD_REG_RBD")), max_size=3).map(tuple),
    comunas=st.lists(st.sampled_from(_vals("COD_COM_RBD")), max_size=4).map(tuple),
    dependencias=st.lists(st.sampled_from([1, 2, 4, 5]), max_size=2).map(tuple),
    rural=st.sampled_from([None, 0, 1]),
    ramas=st.lists(st.sampled_from([400, 500, 600, 700, 800]), max_size=2).map(tuple),
    sectores=st.lists(st.sampled_from(_vals("COD_SEC")), max_size=3).map(tuple),
    especialidades=st.lists(st.sampled_from(_vals("COD_ESPE")), max_size=3).map(tuple),
    generos=st.lists(st.sampled_from([1, 2]), max_size=1).map(tuple),
    grados=st.lists(st.sampled_from([1, 3, 4]), max_size=2).map(tuple),
    tipo=st.sampled_from([None, "jovenes", "adultos"]),
)
# comunas filters are usually empty in practice: make them rarer so results are non-trivial
filters_st = st.one_of(filters_st, filters_st.map(lambda f: f.replace(comunas=(), especialidades=())))
by_st = st.lists(st.sampled_from([d for d in BASE_DIMS if d != "RBD"]), max_size=3, unique=True)


def _direct(f: Filters) -> pa.Table:
    t = STUDENTS
    for dim, vals in f.constraints().items():
        t = t.filter(pc.is_in(t[dim], pa.array(vals).cast(t[dim].type)))
    return t


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(f=filters_st, by=by_st)
def test_count_and_schools_match_student_rows(f, by):
    direct = _direct(f)
    got = CUBE.count(f, by, measures=("n", "n_dual"))
    if by:
        exp = direct.group_by(by).aggregate([("MRUN", "count")]).rename_columns(by + ["n"])
        exp = exp.sort_by([(d, "ascending") for d in by])
        assert got.column_names == by + ["n", "n_dual"]
        assert got.select(by).to_pylist() == exp.select(by).to_pylist()
        assert got["n"].to_pylist() == exp["n"].to_pylist()
        sch = CUBE.schools(f, by)
        exp_s = direct.group_by(by).aggregate([("RBD", "count_distinct")]).sort_by([(d, "ascending") for d in by])
        assert sch["schools"].to_pylist() == exp_s["RBD_count_distinct"].to_pylist()
    else:
        assert got["n"].to_pylist() == [len(direct)]
        assert int(pc.sum(got["n_dual"]).as_py() or 0) == int(pc.sum(pc.equal(direct["COD_DES_CUR"], 2)).as_py() or 0)
        n_sch = CUBE.schools(f)["schools"].to_pylist()
        assert n_sch == [len(set(direct["RBD"].to_pylist()))]


@settings(max_examples=40, deadline=None)
@given(f=filters_st)
def test_kpis_and_school_table_match(f):
    direct = _direct(f)
    k = CUBE.kpis(f)
    assert k["total"] == len(direct)
    gen = direct["GEN_ALU"].to_numpy()
    assert k["mujeres"] == int((gen == 2).sum()) and k["hombres"] == int((gen == 1).sum())
    assert k["establecimientos"] == len(set(direct["RBD"].to_pylist()))
    ages = direct["EDAD_ALU"].drop_null().to_numpy()
    if len(ages):
        assert k["edad_media"] == pytest.approx(ages.mean())
    st_ = CUBE.school_table(f)
    assert int(pc.sum(st_["n"]).as_py() or 0) == len(direct)
    if len(direct):
        top = st_.slice(0, 1).to_pylist()[0]
        mine = direct.filter(pc.equal(direct["RBD"], top["RBD"]))
        assert top["n"] == len(mine)
        assert sorted(top["especialidades"]) == sorted(set(mine["COD_ESPE"].to_pylist()) - {0})


def test_kpis_dual_and_school_detail():
    f = Filters(years=(2025,), tipo="jovenes")
    k = CUBE.kpis(f)
    assert 10.5 < k["pct_dual"] < 12.5
    assert 16 < k["edad_media"] < 18
    rbd = CUBE.school_table(Filters(years=(2025,)))["RBD"][0].as_py()
    d = CUBE.school_detail(rbd)
    assert d["RBD"] == rbd and d["NOM_RBD"] and [a["AGNO"] for a in d["anios"]] == [2024, 2025]
    assert d["anios"][-1]["n"] == len(ROWS.filter(pc.and_(pc.equal(ROWS["RBD"], rbd), pc.equal(ROWS["AGNO"], 2025))))
    assert CUBE.school_detail(1234567) is None and CUBE.school_detail("x") is None


def test_options_narrow_hierarchically():
    o = CUBE.options(Filters(regions=(15,), ramas=(700,)))
    from visualizador_emtp.data import catalog
    assert {c for c, _ in o["comuna"]} <= {c.code for c in catalog.comunas_of_region(15)}
    assert {c for c, _ in o["sector"]} <= {710, 720}
    assert all(c // 100 in (710, 720) for c, _ in o["especialidad"])
    assert o["region"][0][0] == 15  # north to south
    assert [y for y, _ in o["anio"]] == [2024, 2025]


def test_from_query_and_to_query_roundtrip():
    from werkzeug.datastructures import MultiDict
    args = MultiDict([("anio", "2018-2020"), ("anio", "2025"), ("region", "13"), ("region", "RM"),
                      ("region", "99"), ("comuna", "13101"), ("zona", "rural"), ("genero", "mujer"),
                      ("sector", "520"), ("especialidad", "<script>"), ("tipo", "jóvenes"), ("grado", "3"),
                      ("dependencia", "5")] + [("rama", "400")] * 500)
    f, warnings = Filters.from_query(args)
    assert f.years == (2018, 2019, 2020, 2025) and f.regions == (13,) and f.comunas == (13101,)
    assert f.rural == 1 and f.generos == (2,) and f.sectores == (520,) and f.tipo == "jovenes"
    assert f.ramas == () and f.especialidades == () and f.dependencias == (5,)
    assert any("«99»" in w for w in warnings) and any("«<script>»" in w for w in warnings)
    assert any("demasiados valores" in w for w in warnings)
    g, w2 = Filters.from_query(MultiDict(f.to_query()))
    assert g == f and w2 == []


def test_unknown_dimension_is_an_error():
    with pytest.raises(ValueError):
        CUBE.count(Filters(), ["NOPE"])
