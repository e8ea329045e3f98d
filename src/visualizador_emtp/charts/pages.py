"""What each dashboard page shows: cube queries → chart rows, tables and KPIs (no Flask here).

Year semantics (shown to the user in each chart's subtitle):
* distribution charts (by sector, region, ...) show the **last year** of the selection;
* evolution charts show the selected range, or every available year when one year is selected.
"""

from __future__ import annotations

import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import pyarrow as pa

from visualizador_emtp.charts import specs
from visualizador_emtp.data import catalog
from visualizador_emtp.data.cube import Cube, Filters

Column = tuple[str, str, str]  # (row key, header, kind: text | int | pct | signed)

PAGES = {
    "resumen": "Resumen",
    "especialidades": "Especialidades y sectores",
    "territorio": "Territorio",
    "establecimientos": "Establecimientos",
    "establecimiento": "Ficha de establecimiento",
    "tendencias": "Tendencias",
}
TOP_CHOICES = (10, 15, 25, 0)  # 0 = all
DEFAULT_TOP = 15
PAGE_SIZE = 25
SIZE_BINS = ((1, 49), (50, 99), (100, 199), (200, 399), (400, 799), (800, None))
TOP_SERIES = 5
GENDER_LABEL = {1: "Hombre", 2: "Mujer", 0: "Sin información"}
DEPE_SHORT = {1: "Municipal", 2: "Particular subvencionado", 3: "Particular pagado",
              4: "Adm. delegada", 5: "SLEP"}


@dataclass
class ChartData:
    id: str
    template: str
    title: str
    subtitle: str
    rows: list[dict[str, Any]]
    columns: list[Column]
    table: list[dict[str, Any]] | None = None  # rows of the "ver tabla" (default: rows)
    note: str = ""
    wide: bool = False

    @property
    def table_rows(self) -> list[dict[str, Any]]:
        return self.rows if self.table is None else self.table

    @property
    def empty(self) -> bool:
        return not self.rows

    def spec(self, with_title: bool = True) -> dict[str, Any]:
        """The Vega-Lite spec; on screen the card shows the title, downloads carry it in the image."""
        if with_title:
            return specs.fill(self.template, self.rows, self.title, self.subtitle)
        return specs.fill(self.template, self.rows)


@dataclass
class Table:
    id: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]


@dataclass
class PageData:
    page: str
    charts: list[ChartData] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    kpis: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def chart(self, chart_id: str) -> ChartData | None:
        return next((c for c in self.charts if c.id == chart_id), None)


@dataclass(frozen=True)
class View:
    """The effective selection of a request."""

    filters: Filters          # as chosen (years may be empty = latest)
    last_year: int            # year of distribution charts
    years: tuple[int, ...]    # selected years (at least the last one)
    trend_years: tuple[int, ...]
    top: int = DEFAULT_TOP
    params: tuple[tuple[str, str], ...] = ()  # page-specific (q, orden, dir, pagina)

    @property
    def snapshot(self) -> Filters:
        return self.filters.replace(years=(self.last_year,))

    @property
    def trend(self) -> Filters:
        return self.filters.replace(years=self.trend_years)

    def param(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.params if k == name), default)


def make_view(cube: Cube, filters: Filters, top: int = DEFAULT_TOP,
              params: tuple[tuple[str, str], ...] = ()) -> tuple[View, list[str]]:
    """Resolve defaults against the data: no year → the latest; years absent from the data are dropped."""
    notes: list[str] = []
    avail = cube.years
    years = tuple(y for y in filters.years if y in avail)
    missing = [y for y in filters.years if y not in avail]
    if missing:
        shown = ", ".join(str(y) for y in missing[:5]) + ("…" if len(missing) > 5 else "")
        notes.append(f"No hay datos para {'el año' if len(missing) == 1 else 'los años'} {shown}; "
                     f"se muestran los años disponibles ({avail[0]}–{avail[-1]}).")
    if not years:
        years = (avail[-1],)
    f = filters.replace(years=years)
    trend_years = years if len(years) >= 2 else avail
    return View(f, years[-1], years, tuple(trend_years), top, params), notes


# --------------------------------------------------------------------------------------------
# helpers
def _rows(t: pa.Table) -> list[dict[str, Any]]:
    return t.to_pylist()


def _share(rows: list[dict[str, Any]], key: str = "n") -> None:
    total = sum(r[key] for r in rows) or 0
    for r in rows:
        r["pct"] = (r[key] / total) if total else None


def _year_label(v: View) -> str:
    return f"Año {v.last_year}"


def _range_label(years: tuple[int, ...]) -> str:
    return f"{years[0]}–{years[-1]}" if len(years) > 1 else str(years[0])


def _bar_rows(t: pa.Table, dim: str, order: Callable[[int, int], Any] | None = None,
              label: Callable[[int], str] | None = None, value: str = "n") -> list[dict[str, Any]]:
    rows = []
    for rec in t.to_pylist():
        code = rec[dim]
        if rec[value] <= 0:
            continue
        rows.append({"code": code, "cat": (label or (lambda c: catalog.label(dim, c)))(code), "n": rec[value]})
    if order is None:
        rows.sort(key=lambda r: (-r["n"], r["cat"]))
    else:
        rows.sort(key=lambda r: order(r["code"], r["n"]))
    for i, r in enumerate(rows):
        r["orden"] = i
    _share(rows)
    return rows


def _stack_rows(t: pa.Table, cat_dim: str, serie_dim: str, cat_order: dict[Any, int],
                serie_label: Callable[[int], str], serie_order: Callable[[int], int],
                cat_label: Callable[[int], str] | None = None) -> list[dict[str, Any]]:
    totals: dict[Any, int] = {}
    recs = [r for r in t.to_pylist() if r["n"] > 0 and r[cat_dim] in cat_order]
    for r in recs:
        totals[r[cat_dim]] = totals.get(r[cat_dim], 0) + r["n"]
    rows = []
    for r in recs:
        c = r[cat_dim]
        rows.append({"code": c, "cat": (cat_label or (lambda x: catalog.label(cat_dim, x)))(c),
                     "serie": serie_label(r[serie_dim]), "serie_orden": serie_order(r[serie_dim]),
                     "n": r["n"], "pct": r["n"] / totals[c] if totals[c] else None, "orden": cat_order[c]})
    rows.sort(key=lambda r: (r["orden"], r["serie_orden"]))
    return rows


def _pivot_gender(t: pa.Table, dim: str, order: dict[Any, int], label: Callable[[int], str]) -> list[dict]:
    """Table rows: category, total, mujeres, hombres, % mujeres."""
    acc: dict[Any, dict[str, Any]] = {}
    for r in t.to_pylist():
        a = acc.setdefault(r[dim], {"cat": label(r[dim]), "n": 0, "mujeres": 0, "hombres": 0})
        a["n"] += r["n"]
        if r["GEN_ALU"] == 2:
            a["mujeres"] += r["n"]
        elif r["GEN_ALU"] == 1:
            a["hombres"] += r["n"]
    out = []
    for code, a in acc.items():
        if code not in order or a["n"] <= 0:
            continue
        known = a["mujeres"] + a["hombres"]
        a["pct_mujeres"] = a["mujeres"] / known if known else None
        a["orden"] = order[code]
        out.append(a)
    out.sort(key=lambda r: r["orden"])
    return out


REGION_SHORT_NAMES = {13: "Metropolitana", 6: "O'Higgins", 11: "Aysén", 12: "Magallanes"}


def _region_label(code: int) -> str:
    return REGION_SHORT_NAMES.get(code) or catalog.label("COD_REG_RBD", code)


def _depe_label(code: int) -> str:
    """Short dependencia names: they fit axis labels and legends."""
    return DEPE_SHORT.get(code) or catalog.label("COD_DEPE2", code)


def _gender_label(g: int) -> str:
    return GENDER_LABEL.get(g, str(g))


def _gender_order(g: int) -> int:
    return {1: 0, 2: 1}.get(g, 2)


def _trend_rows(t: pa.Table) -> list[dict[str, Any]]:
    rows, prev = [], None
    for rec in t.to_pylist():
        if rec["n"] <= 0:
            continue
        r = {"AGNO": str(rec["AGNO"]), "year": rec["AGNO"], "n": rec["n"], "prev": None, "var": None, "signo": None}
        if prev is not None and prev["year"] == rec["AGNO"] - 1 and prev["n"]:
            r["prev"] = prev["n"]
            r["var"] = (rec["n"] - prev["n"]) / prev["n"]
            r["signo"] = "Alza" if r["var"] >= 0 else "Baja"
        rows.append(r)
        prev = r
    return rows


def _series_rows(t: pa.Table, dim: str, label: Callable[[int], str], keep: list[int] | None,
                 other_label: str | None = None, order: Callable[[int], int] | None = None) -> list[dict]:
    """Multi-line rows: AGNO, serie, n, pct (share of the year); codes outside ``keep`` → other_label."""
    acc: dict[tuple[int, str], dict[str, Any]] = {}
    year_tot: dict[int, int] = {}
    rank = {c: i for i, c in enumerate(keep)} if keep is not None else None
    for rec in t.to_pylist():
        code, y, n = rec[dim], rec["AGNO"], rec["n"]
        if n <= 0:
            continue
        year_tot[y] = year_tot.get(y, 0) + n
        if rank is not None and code not in rank:
            if other_label is None:
                continue
            name, o = other_label, len(rank)
        else:
            name = label(code)
            o = rank[code] if rank is not None else (order(code) if order else code)
        a = acc.setdefault((y, name), {"AGNO": str(y), "year": y, "serie": name, "orden": o, "n": 0})
        a["n"] += n
    rows = sorted(acc.values(), key=lambda r: (r["orden"], r["year"]))
    for r in rows:
        r["pct"] = r["n"] / year_tot[r["year"]] if year_tot.get(r["year"]) else None
    return rows


def _region_order() -> dict[int, int]:
    return {c: catalog.region_order(c) for c in catalog.REGIONS}


@lru_cache(maxsize=8192)
def _norm(text: str) -> str:
    t = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode("ascii")
    return " ".join(t.lower().split())


N_COL: Column = ("n", "Estudiantes", "int")
PCT_COL: Column = ("pct", "% del total", "pct")


# --------------------------------------------------------------------------------------------
# Resumen
def kpis(cube: Cube, v: View) -> list[dict[str, Any]]:
    f = v.snapshot
    k = cube.kpis(f)
    zona = {r["RURAL_RBD"]: r["n"] for r in cube.count(f, ["RURAL_RBD"]).to_pylist()}
    total = k["total"]
    prev_year = v.last_year - 1
    var = prev_total = None
    if prev_year in cube.years:
        prev_total = int(cube.count(f.replace(years=(prev_year,))).column("n")[0].as_py() or 0)
        if prev_total:
            var = 100.0 * (total - prev_total) / prev_total
    rural = zona.get(1, 0)
    return [
        {"id": "total", "label": f"Matrícula EMTP {v.last_year}", "value": total, "kind": "int",
         "hint": f"{k['jovenes']:,} jóvenes · {k['adultos']:,} adultos".replace(",", ".")},
        {"id": "variacion", "label": f"Variación vs {prev_year}", "value": var, "kind": "signed",
         "hint": (f"{prev_total:,} en {prev_year}".replace(",", ".") if prev_total is not None
                  else "Sin datos del año anterior")},
        {"id": "mujeres", "label": "Mujeres", "value": k["pct_mujeres"], "kind": "pct",
         "hint": f"{k['mujeres']:,} estudiantes".replace(",", ".")},
        {"id": "establecimientos", "label": "Establecimientos", "value": k["establecimientos"], "kind": "int",
         "hint": "con matrícula EMTP"},
        {"id": "especialidades", "label": "Especialidades con matrícula", "value": k["especialidades"],
         "kind": "int", "hint": f"de {len(catalog.EMTP_ESPECIALIDADES)} del catálogo"},
        {"id": "dual", "label": "Formación Dual", "value": k["pct_dual"], "kind": "pct",
         "hint": "de la matrícula de jóvenes"},
        {"id": "rural", "label": "Matrícula rural", "value": (100.0 * rural / total) if total else None,
         "kind": "pct", "hint": f"{rural:,} estudiantes".replace(",", ".")},
    ]


def resumen(cube: Cube, v: View) -> PageData:
    p = PageData("resumen")
    p.kpis = kpis(cube, v)
    f = v.snapshot
    trend = _trend_rows(cube.count(v.trend, ["AGNO"]))
    p.charts.append(ChartData("tendencia", "resumen.tendencia", "Matrícula EMTP por año",
                              f"{_range_label(v.trend_years)} · con los demás filtros aplicados", trend,
                              [("AGNO", "Año", "text"), N_COL, ("var", "Variación anual", "signed")], wide=True))
    rama = _bar_rows(cube.count(f, ["COD_RAMA"]), "COD_RAMA")
    p.charts.append(ChartData("rama", "resumen.rama", "Matrícula por rama", _year_label(v), rama,
                              [("cat", "Rama", "text"), N_COL, PCT_COL]))
    depe = _bar_rows(cube.count(f, ["COD_DEPE2"]), "COD_DEPE2", label=_depe_label)
    p.charts.append(ChartData("dependencia", "resumen.dependencia", "Matrícula por dependencia", _year_label(v),
                              depe, [("cat", "Dependencia", "text"), N_COL, PCT_COL]))
    order = {r["code"]: r["orden"] for r in rama}
    g = cube.count(f, ["COD_RAMA", "GEN_ALU"])
    p.charts.append(ChartData(
        "genero", "resumen.genero", "Hombres y mujeres por rama", _year_label(v),
        _stack_rows(g, "COD_RAMA", "GEN_ALU", order, _gender_label, _gender_order),
        [("cat", "Rama", "text"), ("n", "Total", "int"), ("mujeres", "Mujeres", "int"),
         ("hombres", "Hombres", "int"), ("pct_mujeres", "% mujeres", "pct")],
        table=_pivot_gender(g, "COD_RAMA", order, lambda c: catalog.label("COD_RAMA", c))))
    return p


# --------------------------------------------------------------------------------------------
# Especialidades y sectores
def especialidades(cube: Cube, v: View) -> PageData:
    p = PageData("especialidades")
    f = v.snapshot
    sub = _year_label(v)
    sect = _bar_rows(cube.count(f, ["COD_SEC"]), "COD_SEC")
    p.charts.append(ChartData("sector", "especialidades.sector", "Matrícula por sector económico", sub, sect,
                              [("cat", "Sector", "text"), N_COL, PCT_COL]))
    espe_all = _bar_rows(cube.count(f, ["COD_ESPE"]), "COD_ESPE")
    top = v.top if v.top in TOP_CHOICES else DEFAULT_TOP
    espe = espe_all if top == 0 else espe_all[:top]
    shown = "todas" if top == 0 or top >= len(espe_all) else f"las {top} con más matrícula de {len(espe_all)}"
    p.charts.append(ChartData("especialidad", "especialidades.especialidad", "Matrícula por especialidad",
                              f"{sub} · {shown}", espe, [("cat", "Especialidad", "text"), N_COL, PCT_COL]))
    s_order = {r["code"]: r["orden"] for r in sect}
    gs = cube.count(f, ["COD_SEC", "GEN_ALU"])
    p.charts.append(ChartData(
        "genero_sector", "especialidades.genero_sector", "Hombres y mujeres por sector", sub,
        _stack_rows(gs, "COD_SEC", "GEN_ALU", s_order, _gender_label, _gender_order),
        [("cat", "Sector", "text"), ("n", "Total", "int"), ("mujeres", "Mujeres", "int"),
         ("hombres", "Hombres", "int"), ("pct_mujeres", "% mujeres", "pct")],
        table=_pivot_gender(gs, "COD_SEC", s_order, lambda c: catalog.label("COD_SEC", c))))
    e_order = {r["code"]: r["orden"] for r in espe}
    ge = cube.count(f, ["COD_ESPE", "GEN_ALU"])
    p.charts.append(ChartData(
        "genero_especialidad", "especialidades.genero_especialidad", "Hombres y mujeres por especialidad",
        f"{sub} · {shown}", _stack_rows(ge, "COD_ESPE", "GEN_ALU", e_order, _gender_label, _gender_order),
        [("cat", "Especialidad", "text"), ("n", "Total", "int"), ("mujeres", "Mujeres", "int"),
         ("hombres", "Hombres", "int"), ("pct_mujeres", "% mujeres", "pct")],
        table=_pivot_gender(ge, "COD_ESPE", e_order, lambda c: catalog.label("COD_ESPE", c))))
    ts = cube.count(f, ["COD_SEC", "TIPO"])
    tipo_rows = _stack_rows(ts, "COD_SEC", "TIPO", s_order, lambda t: catalog.TIPOS.get(t, str(t)), lambda t: t)
    tipo_table: dict[int, dict[str, Any]] = {}
    for r in tipo_rows:
        a = tipo_table.setdefault(r["code"], {"cat": r["cat"], "orden": r["orden"], "jovenes": 0, "adultos": 0})
        a["jovenes" if r["serie"] == "Jóvenes" else "adultos"] += r["n"]
    for a in tipo_table.values():
        a["n"] = a["jovenes"] + a["adultos"]
        a["pct_adultos"] = a["adultos"] / a["n"] if a["n"] else None
    p.charts.append(ChartData(
        "tipo", "especialidades.tipo", "Jóvenes y adultos por sector", sub, tipo_rows,
        [("cat", "Sector", "text"), ("n", "Total", "int"), ("jovenes", "Jóvenes", "int"),
         ("adultos", "Adultos", "int"), ("pct_adultos", "% adultos", "pct")],
        table=sorted(tipo_table.values(), key=lambda r: r["orden"])))
    # the table behind it: every specialty with its sector, gender, modality and schools
    g_all = {}
    for r in ge.to_pylist():
        g_all.setdefault(r["COD_ESPE"], {})[r["GEN_ALU"]] = r["n"]
    t_all = {}
    for r in cube.count(f, ["COD_ESPE", "TIPO"]).to_pylist():
        t_all.setdefault(r["COD_ESPE"], {})[r["TIPO"]] = r["n"]
    schools = {r["COD_ESPE"]: r["schools"] for r in cube.schools(f, ["COD_ESPE"]).to_pylist()}
    rows = []
    for r in espe_all:
        c = r["code"]
        m, h = g_all.get(c, {}).get(2, 0), g_all.get(c, {}).get(1, 0)
        rows.append({"codigo": c, "cat": r["cat"], "sector": catalog.label("COD_SEC", catalog.especialidad_sector(c) or 0),
                     "n": r["n"], "pct": r["pct"], "mujeres": m, "pct_mujeres": m / (m + h) if m + h else None,
                     "jovenes": t_all.get(c, {}).get(1, 0), "adultos": t_all.get(c, {}).get(2, 0),
                     "establecimientos": schools.get(c, 0)})
    p.tables.append(Table("detalle", f"Detalle por especialidad · {sub}", [
        ("codigo", "Código", "text"), ("cat", "Especialidad", "text"), ("sector", "Sector", "text"),
        N_COL, PCT_COL, ("mujeres", "Mujeres", "int"), ("pct_mujeres", "% mujeres", "pct"),
        ("jovenes", "Jóvenes", "int"), ("adultos", "Adultos", "int"),
        ("establecimientos", "Establecimientos", "int")], rows))
    p.extra["top"] = top
    return p


# --------------------------------------------------------------------------------------------
# Territorio
def territorio(cube: Cube, v: View) -> PageData:
    p = PageData("territorio")
    f = v.snapshot
    sub = _year_label(v)
    ro = _region_order()
    reg = _bar_rows(cube.count(f, ["COD_REG_RBD"]), "COD_REG_RBD", order=lambda c, n: ro.get(c, 99),
                    label=_region_label)
    gr = {}
    for r in cube.count(f, ["COD_REG_RBD", "GEN_ALU"]).to_pylist():
        gr.setdefault(r["COD_REG_RBD"], {})[r["GEN_ALU"]] = r["n"]
    sch = {r["COD_REG_RBD"]: r["schools"] for r in cube.schools(f, ["COD_REG_RBD"]).to_pylist()}
    reg_table = []
    for r in reg:
        m, h = gr.get(r["code"], {}).get(2, 0), gr.get(r["code"], {}).get(1, 0)
        reg_table.append({**r, "mujeres": m, "pct_mujeres": m / (m + h) if m + h else None,
                          "establecimientos": sch.get(r["code"], 0)})
    p.charts.append(ChartData("region", "territorio.region", "Matrícula por región (norte a sur)", sub, reg,
                              [("cat", "Región", "text"), N_COL, PCT_COL, ("mujeres", "Mujeres", "int"),
                               ("pct_mujeres", "% mujeres", "pct"), ("establecimientos", "Establecimientos", "int")],
                              table=reg_table))
    com_t = cube.count(f, ["COD_COM_RBD"])
    com = _bar_rows(com_t, "COD_COM_RBD")
    if f.regions:
        names = ", ".join(catalog.region_name(r) or str(r) for r in f.regions)
        title, note = f"Matrícula por comuna · {names}", ""
    else:
        title = "Comunas con más matrícula (país)"
        note = "Seleccione una región en los filtros para ver todas sus comunas."
        com = com[:25]
    for r in com:
        r["region"] = catalog.region_short(catalog.comuna_region(r["code"]) or 0) or ""
    p.charts.append(ChartData("comuna", "territorio.comuna", title, sub if f.regions else f"{sub} · 25 principales",
                              com, [("cat", "Comuna", "text"), ("region", "Región", "text"), N_COL, PCT_COL],
                              note=note, wide=True))
    rs = cube.count(f, ["COD_REG_RBD", "COD_SEC"])
    sect_tot: dict[int, int] = {}
    for r in rs.to_pylist():
        sect_tot[r["COD_SEC"]] = sect_tot.get(r["COD_SEC"], 0) + r["n"]
    s_rank = {c: i for i, (c, _) in enumerate(sorted(sect_tot.items(), key=lambda x: -x[1]))}
    r_order = {r["code"]: r["orden"] for r in reg}
    heat = _stack_rows(rs, "COD_REG_RBD", "COD_SEC", r_order, lambda s: catalog.label("COD_SEC", s),
                       lambda s: s_rank.get(s, 99), cat_label=lambda c: catalog.region_short(c) or str(c))
    # heat table: one row per region, one column per sector
    sectors = sorted(sect_tot, key=lambda s: s_rank[s])
    table_rows = []
    by_reg: dict[int, dict[str, Any]] = {}
    for r in heat:
        row = by_reg.setdefault(r["code"], {"cat": catalog.region_name(r["code"]) or r["cat"], "orden": r["orden"], "n": 0})
        row[f"s{r['serie_orden']}"] = r["n"]
        row[f"p{r['serie_orden']}"] = r["pct"]
        row["n"] += r["n"]
    table_rows = sorted(by_reg.values(), key=lambda r: r["orden"])
    cols: list[Column] = [("cat", "Región", "text"), ("n", "Total", "int")]
    cols += [(f"s{s_rank[s]}", catalog.label("COD_SEC", s), "int") for s in sectors]
    p.charts.append(ChartData("region_sector", "territorio.region_sector", "Región × sector económico",
                              f"{sub} · el color indica el peso del sector dentro de la región", heat, cols,
                              table=table_rows, wide=True))
    p.extra["heat_sectors"] = [(s_rank[s], catalog.label("COD_SEC", s)) for s in sectors]
    z = cube.count(f, ["COD_REG_RBD", "RURAL_RBD"])
    zr = _stack_rows(z, "COD_REG_RBD", "RURAL_RBD", r_order, lambda c: catalog.ZONAS.get(c, str(c)), lambda c: c,
                     cat_label=lambda c: catalog.region_short(c) or str(c))
    ztab: dict[int, dict[str, Any]] = {}
    for r in zr:
        a = ztab.setdefault(r["code"], {"cat": catalog.region_name(r["code"]), "orden": r["orden"], "urbano": 0, "rural": 0})
        a["rural" if r["serie"] == "Rural" else "urbano"] += r["n"]
    for a in ztab.values():
        tot = a["urbano"] + a["rural"]
        a["pct_rural"] = a["rural"] / tot if tot else None
    p.charts.append(ChartData("zona", "territorio.zona", "Matrícula urbana y rural por región", sub, zr,
                              [("cat", "Región", "text"), ("urbano", "Urbano", "int"), ("rural", "Rural", "int"),
                               ("pct_rural", "% rural", "pct")],
                              table=sorted(ztab.values(), key=lambda r: r["orden"])))
    layout = ["region", "zona", "region_sector", "comuna"]
    p.charts.sort(key=lambda c: layout.index(c.id))
    return p


# --------------------------------------------------------------------------------------------
# Establecimientos
SORTS = {
    "matricula": ("n", True), "rbd": ("RBD", False), "nombre": ("nombre_norm", False),
    "comuna": ("comuna_norm", False), "dependencia": ("dependencia", False), "especialidades": ("n_espe", True),
}


_SCHOOL_ROWS: OrderedDict = OrderedDict()
_SCHOOL_ROWS_LOCK = threading.Lock()


@lru_cache(maxsize=4096)
def _espe_names(codes: tuple[int, ...]) -> str:
    return ", ".join(sorted(catalog.especialidad_name(e) or str(e) for e in codes))


def school_rows(cube: Cube, f: Filters) -> list[dict[str, Any]]:
    """One dict per school (cached per cube and selection; callers must not mutate the rows)."""
    key = (id(cube), cube.version, f)
    with _SCHOOL_ROWS_LOCK:
        hit = _SCHOOL_ROWS.get(key)
        if hit is not None:
            _SCHOOL_ROWS.move_to_end(key)
            return hit
    rows = _school_rows(cube, f)
    with _SCHOOL_ROWS_LOCK:
        _SCHOOL_ROWS[key] = rows
        while len(_SCHOOL_ROWS) > 64:
            _SCHOOL_ROWS.popitem(last=False)
    return rows


def _school_rows(cube: Cube, f: Filters) -> list[dict[str, Any]]:
    t = cube.school_table(f)
    rows = []
    for r in t.to_pylist():
        espe = [e for e in (r["especialidades"] or []) if e]
        com = catalog.comuna_name(r["COD_COM_RBD"]) or (r["NOM_COM_RBD"] or "").title()
        rows.append({
            "RBD": r["RBD"], "nombre": r["NOM_RBD"] or f"RBD {r['RBD']}", "comuna": com,
            "region": catalog.region_short(r["COD_REG_RBD"]) or "",
            "dependencia": catalog.DEPENDENCIAS2_SHORT.get(r["COD_DEPE2"], str(r["COD_DEPE2"])),
            "zona": catalog.ZONAS.get(r["RURAL_RBD"], ""),
            "n_espe": len(espe),
            "especialidades": _espe_names(tuple(espe)),
            "n": r["n"], "mujeres": r["mujeres"],
            "pct_mujeres": r["mujeres"] / (r["mujeres"] + r["hombres"]) if r["mujeres"] + r["hombres"] else None,
            "nombre_norm": _norm(r["NOM_RBD"] or ""), "comuna_norm": _norm(com),
        })
    return rows


SCHOOL_COLUMNS: list[Column] = [
    ("RBD", "RBD", "text"), ("nombre", "Establecimiento", "text"), ("comuna", "Comuna", "text"),
    ("region", "Región", "text"), ("dependencia", "Dependencia", "text"), ("zona", "Zona", "text"),
    ("especialidades", "Especialidades", "text"), ("n", "Estudiantes", "int"), ("mujeres", "Mujeres", "int"),
    ("pct_mujeres", "% mujeres", "pct"),
]


def search_schools(rows: list[dict[str, Any]], q: str, orden: str, desc: bool | None, pagina: int):
    """Filter by text (RBD, name or comuna, accent-insensitive), sort and page. Returns (rows, total, pages, page)."""
    qn = _norm(q)[:80]
    if qn:
        terms = qn.split()
        rows = [r for r in rows if all(t in r["nombre_norm"] or t in r["comuna_norm"] or t == str(r["RBD"])
                                       or (t.isdigit() and str(r["RBD"]).startswith(t)) for t in terms)]
    key, default_desc = SORTS.get(orden, SORTS["matricula"])
    desc = default_desc if desc is None else desc
    rows = sorted(rows, key=lambda r: (r[key], r["RBD"]) if not desc else (r[key], -r["RBD"]), reverse=desc)
    total = len(rows)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, pagina), pages)
    return rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE], total, pages, page


def establecimientos(cube: Cube, v: View, with_list: bool = True) -> PageData:
    p = PageData("establecimientos")
    f = v.snapshot
    sub = _year_label(v)
    ro = _region_order()
    reg = _bar_rows(cube.schools(f, ["COD_REG_RBD"]), "COD_REG_RBD", order=lambda c, n: ro.get(c, 99),
                    value="schools", label=_region_label)
    p.charts.append(ChartData("region", "establecimientos.region", "Establecimientos por región", sub, reg,
                              [("cat", "Región", "text"), ("n", "Establecimientos", "int"),
                               ("pct", "% del total", "pct")]))
    dep = _bar_rows(cube.schools(f, ["COD_DEPE2"]), "COD_DEPE2", value="schools", label=_depe_label)
    p.charts.append(ChartData("dependencia", "establecimientos.dependencia", "Establecimientos por dependencia",
                              sub, dep, [("cat", "Dependencia", "text"), ("n", "Establecimientos", "int"),
                                         ("pct", "% del total", "pct")]))
    rows = school_rows(cube, f)
    bins = []
    for i, (lo, hi) in enumerate(SIZE_BINS):
        cnt = sum(1 for r in rows if r["n"] >= lo and (hi is None or r["n"] <= hi))
        label = f"{lo}–{hi}" if hi is not None else f"{lo} o más"
        bins.append({"cat": label, "n": cnt, "orden": i})
    _share(bins)
    if not rows:
        bins = []
    p.charts.append(ChartData("tamano", "establecimientos.tamano", "Tamaño de los establecimientos",
                              f"{sub} · número de establecimientos según su matrícula EMTP", bins,
                              [("cat", "Estudiantes EMTP", "text"), ("n", "Establecimientos", "int"),
                               ("pct", "% de establecimientos", "pct")]))
    p.extra["schools"] = rows
    p.tables.append(Table("establecimientos", f"Establecimientos · {sub}", SCHOOL_COLUMNS, rows))
    return p


def establecimiento(cube: Cube, rbd: int, v: View) -> PageData | None:
    d = cube.school_detail(rbd)
    if d is None:
        return None
    p = PageData("establecimiento")
    p.extra["school"] = d
    anios = [{"AGNO": str(a["AGNO"]), "year": a["AGNO"], "n": a["n"]} for a in d["anios"]]
    anios = _trend_rows(pa.table({"AGNO": [a["year"] for a in anios], "n": [a["n"] for a in anios]})) if anios else []
    p.charts.append(ChartData("anios", "establecimiento.anios", "Matrícula EMTP por año",
                              "Todos los años disponibles", anios,
                              [("AGNO", "Año", "text"), N_COL, ("var", "Variación anual", "signed")], wide=True))
    years = [a["AGNO"] for a in d["anios"]]
    last = v.last_year if v.last_year in years else (years[-1] if years else v.last_year)
    p.extra["year"] = last
    acc: dict[int, dict[str, Any]] = {}
    for e in d["especialidades"]:
        if e["AGNO"] != last:
            continue
        a = acc.setdefault(e["COD_ESPE"], {"code": e["COD_ESPE"], "cat": e["nombre"] or str(e["COD_ESPE"]),
                                           "n": 0, "jovenes": 0, "adultos": 0, "n_dual": 0})
        a["n"] += e["n"]
        a["n_dual"] += e["n_dual"]
        a["jovenes" if e["TIPO"] == 1 else "adultos"] += e["n"]
    esp = sorted(acc.values(), key=lambda r: (-r["n"], r["cat"]))
    for i, r in enumerate(esp):
        r["orden"] = i
        r["sector"] = catalog.label("COD_SEC", catalog.especialidad_sector(r["code"]) or 0)
    _share(esp)
    p.charts.append(ChartData("especialidades", "establecimiento.especialidades", "Matrícula por especialidad",
                              f"Año {last}", esp,
                              [("cat", "Especialidad", "text"), ("sector", "Sector", "text"), N_COL, PCT_COL,
                               ("jovenes", "Jóvenes", "int"), ("adultos", "Adultos", "int"),
                               ("n_dual", "Dual", "int")]))
    gen = []
    gtab = []
    for i, a in enumerate(d["anios"]):
        known = a["hombres"] + a["mujeres"]
        for code, key in ((1, "hombres"), (2, "mujeres")):
            if a[key] > 0:
                gen.append({"cat": str(a["AGNO"]), "orden": i, "serie": _gender_label(code),
                            "serie_orden": _gender_order(code), "n": a[key],
                            "pct": a[key] / known if known else None})
        gtab.append({"cat": str(a["AGNO"]), "n": a["n"], "mujeres": a["mujeres"], "hombres": a["hombres"],
                     "pct_mujeres": a["mujeres"] / known if known else None})
    p.charts.append(ChartData("genero", "establecimiento.genero", "Hombres y mujeres por año",
                              "Todos los años disponibles", gen,
                              [("cat", "Año", "text"), ("n", "Total", "int"), ("mujeres", "Mujeres", "int"),
                               ("hombres", "Hombres", "int"), ("pct_mujeres", "% mujeres", "pct")], table=gtab))
    return p


# --------------------------------------------------------------------------------------------
# Tendencias
def tendencias(cube: Cube, v: View) -> PageData:
    p = PageData("tendencias")
    f = v.trend
    sub = _range_label(v.trend_years)
    if len(v.years) < 2:
        sub += " · todos los años disponibles (elija un rango de años para acotar)"
    trend = _trend_rows(cube.count(f, ["AGNO"]))
    p.charts.append(ChartData("total", "tendencias.total", "Matrícula EMTP por año", sub, trend,
                              [("AGNO", "Año", "text"), N_COL, ("var", "Variación anual", "signed")]))
    change = [r for r in trend if r["var"] is not None]
    p.charts.append(ChartData("variacion", "tendencias.variacion", "Variación respecto del año anterior", sub,
                              change, [("AGNO", "Año", "text"), N_COL, ("prev", "Año anterior", "int"),
                                       ("var", "Variación", "signed")]))
    st = cube.count(f, ["AGNO", "COD_SEC"])
    last_year = v.trend_years[-1]
    last = sorted(((r["COD_SEC"], r["n"]) for r in st.to_pylist() if r["AGNO"] == last_year), key=lambda x: -x[1])
    if not last:
        tot: dict[int, int] = {}
        for r in st.to_pylist():
            tot[r["COD_SEC"]] = tot.get(r["COD_SEC"], 0) + r["n"]
        last = sorted(tot.items(), key=lambda x: -x[1])
    keep = [c for c, _ in last[:TOP_SERIES]]
    many = len({r["COD_SEC"] for r in st.to_pylist()}) > TOP_SERIES
    sect_rows = _series_rows(st, "COD_SEC", lambda c: catalog.label("COD_SEC", c), keep,
                             "Otros sectores" if many else None)
    p.charts.append(ChartData("sector", "tendencias.sector", "Evolución por sector económico",
                              f"{sub} · {'los 5 sectores con más matrícula y el resto agrupado' if many else 'sectores seleccionados'}",
                              sect_rows, [("serie", "Sector", "text"), ("AGNO", "Año", "text"), N_COL,
                                          ("pct", "% del año", "pct")], wide=True))
    dt = cube.count(f, ["AGNO", "COD_DEPE2"])
    p.charts.append(ChartData("dependencia", "tendencias.dependencia", "Evolución por dependencia", sub,
                              _series_rows(dt, "COD_DEPE2", _depe_label, None,
                                           order=lambda c: c),
                              [("serie", "Dependencia", "text"), ("AGNO", "Año", "text"), N_COL,
                               ("pct", "% del año", "pct")]))
    gt = cube.count(f, ["AGNO", "GEN_ALU"])
    p.charts.append(ChartData("genero", "tendencias.genero", "Evolución por género", sub,
                              _series_rows(gt, "GEN_ALU", _gender_label, None, order=_gender_order),
                              [("serie", "Género", "text"), ("AGNO", "Año", "text"), N_COL,
                               ("pct", "% del año", "pct")]))
    # year-over-year table by sector
    years = [y for y in v.trend_years if y in cube.years]
    by: dict[int, dict[int, int]] = {}
    for r in st.to_pylist():
        by.setdefault(r["COD_SEC"], {})[r["AGNO"]] = r["n"]
    rows = []
    for code, vals in by.items():
        row = {"cat": catalog.label("COD_SEC", code), "code": code}
        for y in years:
            row[f"y{y}"] = vals.get(y, 0)
        a, b = (vals.get(years[-2], 0), vals.get(years[-1], 0)) if len(years) >= 2 else (0, 0)
        row["var"] = (b - a) / a if a else None
        first = vals.get(years[0], 0)
        row["var_total"] = (b - first) / first if first and len(years) >= 2 else None
        rows.append(row)
    rows.sort(key=lambda r: -r.get(f"y{years[-1]}", 0) if years else 0)
    cols: list[Column] = [("cat", "Sector", "text")] + [(f"y{y}", str(y), "int") for y in years]
    if len(years) >= 2:
        cols += [("var", f"Var. {years[-2]}–{years[-1]}", "signed"), ("var_total", f"Var. {years[0]}–{years[-1]}", "signed")]
    p.tables.append(Table("sector_anual", f"Matrícula por sector y año · {sub.split(' · ')[0]}", cols, rows))
    return p


BUILDERS: dict[str, Callable[[Cube, View], PageData]] = {
    "resumen": resumen,
    "especialidades": especialidades,
    "territorio": territorio,
    "establecimientos": establecimientos,
    "tendencias": tendencias,
}
