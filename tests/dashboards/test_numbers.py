"""Every number a dashboard fragment shows equals a direct pyarrow count on the published student rows.

Hypothesis draws filter combinations (years, region, comuna, dependencia, zona, rama, sector,
especialidad, género, tipo, grado) as a user would put them in the URL; each fragment is fetched
through the real app (Flask test client, logged in) and its charts' data and KPIs are compared
with an independent computation on the student-level parquet files.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dash_helpers import chart_rows, filter_rows, group_count, kpi_values, parse_cl
from visualizador_emtp.charts import pages
from visualizador_emtp.data import catalog

HX = {"HX-Request": "true", "HX-Target": "tablero"}
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Sel:
    """A drawn selection: the URL query and the constraints it means, computed independently."""

    def __init__(self, query, cons, years, all_years):
        self.query, self.cons, self.years = query, cons, years
        self.last = years[-1]
        self.trend_years = years if len(years) >= 2 else all_years

    def snapshot(self, students):
        return filter_rows(students, {**self.cons, "AGNO": (self.last,)})

    def trend(self, students):
        return filter_rows(students, {**self.cons, "AGNO": tuple(self.trend_years)})


def draw_selection(data, students) -> Sel:
    all_years = tuple(sorted(set(students.column("AGNO").to_pylist())))
    q, cons = [], {}
    mode = data.draw(st.sampled_from(["none", "single", "range"]), label="anio")
    if mode == "single":
        y = data.draw(st.sampled_from(all_years))
        q.append(("anio", str(y)))
        years = (y,)
    elif mode == "range":
        a, b = sorted(data.draw(st.lists(st.sampled_from(all_years), min_size=2, max_size=2, unique=True)))
        q.append(("anio", f"{a}-{b}"))
        years = tuple(range(a, b + 1))
    else:
        years = (all_years[-1],)

    def maybe(p=0.3):
        return data.draw(st.floats(0, 1)) < p

    regions = sorted(set(students.column("COD_REG_RBD").to_pylist()))
    if maybe(0.45):
        r = data.draw(st.sampled_from(regions), label="region")
        q.append(("region", str(r)))
        cons["COD_REG_RBD"] = (r,)
        if maybe(0.3):
            coms = sorted(set(filter_rows(students, {"COD_REG_RBD": (r,)}).column("COD_COM_RBD").to_pylist()))
            c = data.draw(st.sampled_from(coms), label="comuna")
            q.append(("comuna", str(c)))
            cons["COD_COM_RBD"] = (c,)
    if maybe():
        d = data.draw(st.sampled_from([1, 2, 4, 5]), label="dependencia")
        q.append(("dependencia", str(d)))
        cons["COD_DEPE2"] = (d,)
    if maybe(0.2):
        z = data.draw(st.sampled_from(["urbano", "rural"]), label="zona")
        q.append(("zona", z))
        cons["RURAL_RBD"] = (1 if z == "rural" else 0,)
    if maybe(0.25):
        rama = data.draw(st.sampled_from(list(catalog.EMTP_RAMAS)), label="rama")
        q.append(("rama", str(rama)))
        cons["COD_RAMA"] = (rama,)
    if maybe(0.25):
        sectors = [c for c, s in catalog.SECTORES.items() if s.rama in catalog.EMTP_RAMAS]
        sec = data.draw(st.sampled_from(sectors), label="sector")
        q.append(("sector", str(sec)))
        cons["COD_SEC"] = (sec,)
    if maybe(0.15):
        esp = data.draw(st.sampled_from(list(catalog.EMTP_ESPECIALIDADES)), label="especialidad")
        q.append(("especialidad", str(esp)))
        cons["COD_ESPE"] = (esp,)
    if maybe():
        g = data.draw(st.sampled_from(["hombre", "mujer"]), label="genero")
        q.append(("genero", g))
        cons["GEN_ALU"] = (1 if g == "hombre" else 2,)
    if maybe(0.25):
        t = data.draw(st.sampled_from(["jovenes", "adultos"]), label="tipo")
        q.append(("tipo", t))
        cons["TIPO"] = (1 if t == "jovenes" else 2,)
    if maybe(0.2):
        gr = data.draw(st.sampled_from([1, 3, 4]), label="grado")
        q.append(("grado", str(gr)))
        cons["COD_GRADO"] = (gr,)
    order = data.draw(st.permutations(q), label="orden de parámetros")
    return Sel(list(order), cons, years, all_years)


def fetch(client, page, sel, extra=()):
    r = client.get(f"/{page}?{urlencode(list(sel.query) + list(extra))}", headers=HX)
    assert r.status_code == 200, r.status_code
    html = r.get_data(as_text=True)
    assert 'id="tablero"' in html and "<html" not in html  # a fragment, not the whole page
    return html


def by_label(rows, key="cat"):
    return {r[key]: r["n"] for r in rows}


def labelled(counts: dict, fn) -> dict:
    return {fn(c): n for c, n in counts.items() if n > 0}


@SETTINGS
@given(data=st.data())
def test_resumen_matches_student_rows(client, students, data):
    sel = draw_selection(data, students)
    html = fetch(client, "resumen", sel)
    snap = sel.snapshot(students)
    k = kpi_values(html)
    assert parse_cl(k["total"]) == len(snap)
    assert parse_cl(k["establecimientos"]) == len(set(snap.column("RBD").to_pylist()))
    gen = group_count(snap, ["GEN_ALU"])
    known = gen.get(1, 0) + gen.get(2, 0)
    if known:
        assert abs(parse_cl(k["mujeres"]) - round(100 * gen.get(2, 0) / known, 1)) < 0.051
    else:
        assert k["mujeres"] == "–"
    rural = group_count(snap, ["RURAL_RBD"]).get(1, 0)
    if len(snap):
        assert abs(parse_cl(k["rural"]) - round(100 * rural / len(snap), 1)) < 0.051
    prev = filter_rows(students, {**sel.cons, "AGNO": (sel.last - 1,)})
    if sel.last - 1 in set(students.column("AGNO").to_pylist()) and len(prev):
        assert abs(parse_cl(k["variacion"]) - round(100 * (len(snap) - len(prev)) / len(prev), 1)) < 0.051
    charts = chart_rows(html)
    trend = group_count(sel.trend(students), ["AGNO"])
    assert {int(r["AGNO"]): r["n"] for r in charts.get("resumen.tendencia", [])} == {y: n for y, n in trend.items() if n}
    assert by_label(charts.get("resumen.rama", [])) == labelled(group_count(snap, ["COD_RAMA"]),
                                                                lambda c: catalog.label("COD_RAMA", c))
    assert by_label(charts.get("resumen.dependencia", [])) == labelled(group_count(snap, ["COD_DEPE2"]),
                                                                       pages._depe_label)
    g = group_count(snap, ["COD_RAMA", "GEN_ALU"])
    assert {(r["cat"], r["serie"]): r["n"] for r in charts.get("resumen.genero", [])} == {
        (catalog.label("COD_RAMA", ra), pages._gender_label(ge)): n for (ra, ge), n in g.items() if n}


@SETTINGS
@given(data=st.data())
def test_especialidades_matches_student_rows(client, students, data):
    sel = draw_selection(data, students)
    top = data.draw(st.sampled_from(pages.TOP_CHOICES), label="top")
    html = fetch(client, "especialidades", sel, [("top", str(top))])
    snap = sel.snapshot(students)
    charts = chart_rows(html)
    assert by_label(charts.get("especialidades.sector", [])) == labelled(
        group_count(snap, ["COD_SEC"]), lambda c: catalog.label("COD_SEC", c))
    espe = group_count(snap, ["COD_ESPE"])
    shown = charts.get("especialidades.especialidad", [])
    assert len(shown) == (len(espe) if top == 0 else min(top, len(espe)))
    for r in shown:
        assert espe[r["code"]] == r["n"]
    # the shown ones are the largest
    if shown:
        assert min(r["n"] for r in shown) >= max([n for c, n in espe.items() if c not in {r["code"] for r in shown}],
                                                 default=0)
    gs = group_count(snap, ["COD_SEC", "GEN_ALU"])
    assert {(r["cat"], r["serie"]): r["n"] for r in charts.get("especialidades.genero_sector", [])} == {
        (catalog.label("COD_SEC", s), pages._gender_label(g)): n for (s, g), n in gs.items() if n}
    ts = group_count(snap, ["COD_SEC", "TIPO"])
    assert {(r["cat"], r["serie"]): r["n"] for r in charts.get("especialidades.tipo", [])} == {
        (catalog.label("COD_SEC", s), catalog.TIPOS[t]): n for (s, t), n in ts.items() if n}


@SETTINGS
@given(data=st.data())
def test_territorio_matches_student_rows(client, students, data):
    sel = draw_selection(data, students)
    html = fetch(client, "territorio", sel)
    snap = sel.snapshot(students)
    charts = chart_rows(html)
    reg = charts.get("territorio.region", [])
    assert by_label(reg) == labelled(group_count(snap, ["COD_REG_RBD"]), pages._region_label)
    # north to south
    assert [r["code"] for r in reg] == sorted((r["code"] for r in reg), key=catalog.region_order)
    com = group_count(snap, ["COD_COM_RBD"])
    shown = charts.get("territorio.comuna", [])
    if "COD_REG_RBD" in sel.cons:
        assert {r["code"]: r["n"] for r in shown} == {c: n for c, n in com.items() if n}
    else:
        assert len(shown) == min(25, len(com))
        assert all(com[r["code"]] == r["n"] for r in shown)
    rs = group_count(snap, ["COD_REG_RBD", "COD_SEC"])
    assert {(r["code"], r["serie"]): r["n"] for r in charts.get("territorio.region_sector", [])} == {
        (reg_, catalog.label("COD_SEC", s)): n for (reg_, s), n in rs.items() if n}


@SETTINGS
@given(data=st.data())
def test_establecimientos_matches_student_rows(client, students, data):
    sel = draw_selection(data, students)
    html = fetch(client, "establecimientos", sel)
    snap = sel.snapshot(students)
    charts = chart_rows(html)
    pairs = set(zip(snap.column("COD_REG_RBD").to_pylist(), snap.column("RBD").to_pylist()))
    per_region: dict = {}
    for reg, _ in pairs:
        per_region[reg] = per_region.get(reg, 0) + 1
    assert by_label(charts.get("establecimientos.region", [])) == labelled(per_region, pages._region_label)
    sizes = group_count(snap, ["RBD"])
    expected = {}
    for lo, hi in pages.SIZE_BINS:
        label = f"{lo}–{hi}" if hi is not None else f"{lo} o más"
        expected[label] = sum(1 for n in sizes.values() if n >= lo and (hi is None or n <= hi))
    got = by_label(charts.get("establecimientos.tamano", []))
    assert got == (expected if sizes else {})
    total = len(sizes)
    if total:
        assert f"{total:,}".replace(",", ".") + " establecimiento" in html


@SETTINGS
@given(data=st.data())
def test_tendencias_matches_student_rows(client, students, data):
    sel = draw_selection(data, students)
    html = fetch(client, "tendencias", sel)
    tr = sel.trend(students)
    charts = chart_rows(html)
    by_year = group_count(tr, ["AGNO"])
    assert {int(r["AGNO"]): r["n"] for r in charts.get("tendencias.total", [])} == {y: n for y, n in by_year.items() if n}
    for r in charts.get("tendencias.variacion", []):
        y = int(r["AGNO"])
        assert abs(r["var"] - (by_year[y] - by_year[y - 1]) / by_year[y - 1]) < 1e-9
    g = group_count(tr, ["AGNO", "GEN_ALU"])
    assert {(int(r["AGNO"]), r["serie"]): r["n"] for r in charts.get("tendencias.genero", [])} == {
        (y, pages._gender_label(ge)): n for (y, ge), n in g.items() if n}
    d = group_count(tr, ["AGNO", "COD_DEPE2"])
    assert {(int(r["AGNO"]), r["serie"]): r["n"] for r in charts.get("tendencias.dependencia", [])} == {
        (y, pages._depe_label(de)): n for (y, de), n in d.items() if n}
    # sectors: the top five (by the last year) plus "Otros sectores" add up to the year's total
    sect = charts.get("tendencias.sector", [])
    for y, n in by_year.items():
        assert sum(r["n"] for r in sect if int(r["AGNO"]) == y) == n


def test_school_page_matches_student_rows(client, students):
    rbd = int(pc.mode(students.column("RBD"))[0]["mode"].as_py())
    r = client.get(f"/establecimientos/{rbd}")
    assert r.status_code == 200
    charts = chart_rows(r.get_data(as_text=True))
    school = filter_rows(students, {"RBD": (rbd,)})
    assert {int(x["AGNO"]): x["n"] for x in charts["establecimiento.anios"]} == group_count(school, ["AGNO"])
    last = max(school.column("AGNO").to_pylist())
    espe = group_count(filter_rows(school, {"AGNO": (last,)}), ["COD_ESPE"])
    assert {x["code"]: x["n"] for x in charts["establecimiento.especialidades"]} == espe
    g = group_count(school, ["AGNO", "GEN_ALU"])
    assert {(int(x["cat"]), x["serie"]): x["n"] for x in charts["establecimiento.genero"]} == {
        (y, pages._gender_label(ge)): n for (y, ge), n in g.items() if ge in (1, 2)}
