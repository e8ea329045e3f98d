"""Altair chart templates, compiled to Vega-Lite dicts once per process.

Building an Altair object and serialising it costs 10-20 ms, so it never happens on the
request path: every chart is built the first time it is needed (``base_spec``), kept as a
plain dict that reads its rows from the named data source ``d``, and each request only makes
a shallow copy with ``datasets`` (and, when needed, the title) filled in (``fill``).

Row fields used by the templates (prepared by ``charts.pages``):
  cat     category label            n      students (or schools)        orden  display order
  serie   series label (colour)     pct    share, 0-1 (tooltips)        AGNO   year (string)
  var     year-over-year change, 0-1 (signo: "Alza"/"Baja")
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import altair as alt

DATA_NAME = "d"
INT = ",d"
PCT = ".1%"
SIGNED_PCT = "+.1%"
GENDER_DOMAIN = ["Hombre", "Mujer"]
TIPO_DOMAIN = ["Jóvenes", "Adultos"]
SIGN_DOMAIN = ["Alza", "Baja"]


def _data() -> alt.NamedData:
    return alt.NamedData(DATA_NAME)


def _sort():
    return alt.EncodingSortField(field="orden", op="min", order="ascending")


def bar_h(cat_title: str, value_title: str = "Estudiantes", share: bool = True, labels: bool = True) -> alt.Chart:
    tooltip = [alt.Tooltip("cat:N", title=cat_title), alt.Tooltip("n:Q", title=value_title, format=INT)]
    if share:
        tooltip.append(alt.Tooltip("pct:Q", title="% del total", format=PCT))
    base = alt.Chart(_data()).encode(
        y=alt.Y("cat:N", sort=_sort(), title=None, axis=alt.Axis(labelLimit=260)),
        x=alt.X("n:Q", title=value_title, axis=alt.Axis(format=INT, tickCount=5)),
        tooltip=tooltip,
    )
    chart = base.mark_bar()
    if labels:
        chart = chart + base.mark_text(align="left", dx=4, fontSize=11).encode(text=alt.Text("n:Q", format=INT))
    # room on the right for the value labels at the end of the longest bar
    return chart.properties(width="container", height=alt.Step(22),
                            padding={"left": 4, "top": 4, "bottom": 4, "right": 52 if labels else 8})


def bar_v(cat_title: str, value_title: str = "Estudiantes", x_type: str = "O", label_angle: int = 0) -> alt.Chart:
    base = alt.Chart(_data()).encode(
        x=alt.X(f"cat:{x_type}", sort=_sort(), title=cat_title, axis=alt.Axis(labelAngle=label_angle)),
        y=alt.Y("n:Q", title=value_title, axis=alt.Axis(format=INT, tickCount=5)),
        tooltip=[alt.Tooltip("cat:N", title=cat_title), alt.Tooltip("n:Q", title=value_title, format=INT)],
    )
    return (base.mark_bar() + base.mark_text(dy=-6, fontSize=11).encode(text=alt.Text("n:Q", format=INT))
            ).properties(width="container", height=240)


def line_years(value_title: str = "Estudiantes") -> alt.Chart:
    base = alt.Chart(_data()).encode(
        x=alt.X("AGNO:O", title="Año", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("n:Q", title=value_title, axis=alt.Axis(format=INT, tickCount=5), scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("AGNO:O", title="Año"), alt.Tooltip("n:Q", title=value_title, format=INT),
                 alt.Tooltip("var:Q", title="Variación anual", format=SIGNED_PCT)],
    )
    return (base.mark_line() + base.mark_point() +
            base.mark_text(dy=-12, fontSize=10.5).encode(text=alt.Text("n:Q", format=INT))
            ).properties(width="container", height=240)


def multi_line(series_title: str, value_title: str = "Estudiantes", share_title: str = "% del año") -> alt.Chart:
    sel = alt.selection_point(fields=["serie"], bind="legend")
    base = alt.Chart(_data()).encode(
        x=alt.X("AGNO:O", title="Año", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("n:Q", title=value_title, axis=alt.Axis(format=INT, tickCount=5)),
        color=alt.Color("serie:N", title=series_title, sort=_sort(), legend=alt.Legend(columns=3, labelLimit=220)),
        strokeDash=alt.StrokeDash("serie:N", sort=_sort(), title=series_title),  # merged with the colour legend
        opacity=alt.condition(sel, alt.value(1), alt.value(0.2)),
        tooltip=[alt.Tooltip("serie:N", title=series_title), alt.Tooltip("AGNO:O", title="Año"),
                 alt.Tooltip("n:Q", title=value_title, format=INT),
                 alt.Tooltip("pct:Q", title=share_title, format=PCT)],
    )
    return (base.mark_line().add_params(sel) + base.mark_point(size=40)).properties(width="container", height=260)


def stacked_h(cat_title: str, series_title: str, domain: list[str], normalize: bool,
              value_title: str = "Estudiantes") -> alt.Chart:
    x = alt.X("n:Q", stack="normalize" if normalize else "zero",
              title="% de estudiantes" if normalize else value_title,
              axis=alt.Axis(format=".0%" if normalize else INT, tickCount=5))
    return alt.Chart(_data()).mark_bar().encode(
        y=alt.Y("cat:N", sort=_sort(), title=None, axis=alt.Axis(labelLimit=260)),
        x=x,
        color=alt.Color("serie:N", title=series_title, scale=alt.Scale(domain=domain)),
        order=alt.Order("serie_orden:Q"),
        tooltip=[alt.Tooltip("cat:N", title=cat_title), alt.Tooltip("serie:N", title=series_title),
                 alt.Tooltip("n:Q", title=value_title, format=INT),
                 alt.Tooltip("pct:Q", title=f"% de {cat_title.lower()}", format=PCT)],
    ).properties(width="container", height=alt.Step(22))


def change_years(value_title: str = "Variación anual") -> alt.Chart:
    base = alt.Chart(_data()).encode(
        x=alt.X("AGNO:O", title="Año", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("var:Q", title=value_title, axis=alt.Axis(format=".0%", tickCount=5),
                scale=alt.Scale(padding=18)),
        tooltip=[alt.Tooltip("AGNO:O", title="Año"), alt.Tooltip("n:Q", title="Estudiantes", format=INT),
                 alt.Tooltip("prev:Q", title="Año anterior", format=INT),
                 alt.Tooltip("var:Q", title=value_title, format=SIGNED_PCT)],
    )
    bars = base.mark_bar().encode(color=alt.Color("signo:N", title=None, scale=alt.Scale(domain=SIGN_DOMAIN),
                                                  legend=None))
    up = base.mark_text(fontSize=10.5, dy=-8).encode(text=alt.Text("var:Q", format=SIGNED_PCT)
                                                     ).transform_filter("datum.var >= 0")
    down = base.mark_text(fontSize=10.5, dy=10).encode(text=alt.Text("var:Q", format=SIGNED_PCT)
                                                       ).transform_filter("datum.var < 0")
    rule = alt.Chart(_data()).mark_rule().encode(y=alt.datum(0))
    return (bars + up + down + rule).properties(width="container", height=220)


def heatmap(row_title: str, col_title: str, value_title: str = "Estudiantes") -> alt.Chart:
    base = alt.Chart(_data()).encode(
        y=alt.Y("cat:N", sort=_sort(), title=None),
        x=alt.X("serie:N", sort=alt.EncodingSortField(field="serie_orden", op="min"), title=None,
                axis=alt.Axis(orient="top", labelAngle=-40, labelLimit=160)),
        tooltip=[alt.Tooltip("cat:N", title=row_title), alt.Tooltip("serie:N", title=col_title),
                 alt.Tooltip("n:Q", title=value_title, format=INT),
                 alt.Tooltip("pct:Q", title=f"% de la {row_title.lower()}", format=PCT)],
    )
    rect = base.mark_rect(strokeWidth=0).encode(
        color=alt.Color("pct:Q", title=f"% de la {row_title.lower()}", legend=alt.Legend(format=".0%", orient="right"),
                        scale=alt.Scale(type="linear", zero=True)))
    text = base.mark_text(fontSize=9.5).encode(
        text=alt.Text("n:Q", format=INT),
        # readable on any cell, in light and dark themes: pick the text colour by the cell's luminance
        color=alt.value(alt.ExprRef(expr="luminance(scale('color', datum.pct)) > 0.4 ? '#1D2A35' : '#FFFFFF'")),
    )
    return (rect + text).properties(width="container", height=alt.Step(24))


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Template:
    """A chart template: how to build it (called once) and what it is about (for screen readers)."""

    build: Callable[[], alt.TopLevelMixin]
    description: str
    kind: str = "bar"


TEMPLATES: dict[str, Template] = {
    # Resumen
    "resumen.tendencia": Template(lambda: line_years(), "Gráfico de líneas con la matrícula EMTP por año."),
    "resumen.rama": Template(lambda: bar_h("Rama"), "Gráfico de barras horizontales con la matrícula por rama."),
    "resumen.dependencia": Template(lambda: bar_h("Dependencia"),
                                    "Gráfico de barras horizontales con la matrícula por dependencia."),
    "resumen.genero": Template(lambda: stacked_h("Rama", "Género", GENDER_DOMAIN, normalize=True),
                               "Barras apiladas al 100 % con la distribución por género en cada rama."),
    # Especialidades y sectores
    "especialidades.sector": Template(lambda: bar_h("Sector económico"),
                                      "Gráfico de barras horizontales con la matrícula por sector económico."),
    "especialidades.especialidad": Template(lambda: bar_h("Especialidad"),
                                            "Gráfico de barras horizontales con la matrícula por especialidad."),
    "especialidades.genero_sector": Template(
        lambda: stacked_h("Sector", "Género", GENDER_DOMAIN, normalize=True),
        "Barras apiladas al 100 % con la proporción de hombres y mujeres en cada sector económico."),
    "especialidades.genero_especialidad": Template(
        lambda: stacked_h("Especialidad", "Género", GENDER_DOMAIN, normalize=True),
        "Barras apiladas al 100 % con la proporción de hombres y mujeres en cada especialidad."),
    "especialidades.tipo": Template(
        lambda: stacked_h("Sector", "Modalidad", TIPO_DOMAIN, normalize=False),
        "Barras apiladas con estudiantes jóvenes y adultos en cada sector económico."),
    # Territorio
    "territorio.region": Template(lambda: bar_h("Región"),
                                  "Gráfico de barras horizontales con la matrícula por región, de norte a sur."),
    "territorio.comuna": Template(lambda: bar_h("Comuna"),
                                  "Gráfico de barras horizontales con la matrícula por comuna."),
    "territorio.region_sector": Template(lambda: heatmap("Región", "Sector"),
                                         "Mapa de calor de la matrícula por región y sector económico."),
    "territorio.zona": Template(lambda: stacked_h("Región", "Zona", ["Urbano", "Rural"], normalize=True),
                                "Barras apiladas al 100 % con la matrícula urbana y rural en cada región."),
    # Establecimientos
    "establecimientos.region": Template(lambda: bar_h("Región", "Establecimientos"),
                                        "Gráfico de barras con el número de establecimientos por región."),
    "establecimientos.dependencia": Template(lambda: bar_h("Dependencia", "Establecimientos"),
                                             "Gráfico de barras con el número de establecimientos por dependencia."),
    "establecimientos.tamano": Template(lambda: bar_v("Estudiantes EMTP por establecimiento", "Establecimientos",
                                                      label_angle=0),
                                        "Histograma: número de establecimientos según su matrícula EMTP."),
    "establecimiento.anios": Template(lambda: line_years(),
                                      "Gráfico de líneas con la matrícula EMTP del establecimiento por año."),
    "establecimiento.especialidades": Template(lambda: bar_h("Especialidad"),
                                               "Gráfico de barras con la matrícula del establecimiento por especialidad."),
    "establecimiento.genero": Template(lambda: stacked_h("Año", "Género", GENDER_DOMAIN, normalize=True),
                                       "Barras apiladas al 100 % con la distribución por género en cada año."),
    # Tendencias
    "tendencias.total": Template(lambda: line_years(), "Gráfico de líneas con la matrícula EMTP total por año."),
    "tendencias.variacion": Template(lambda: change_years(),
                                     "Gráfico de barras con la variación porcentual de la matrícula respecto del año anterior."),
    "tendencias.sector": Template(lambda: multi_line("Sector"),
                                  "Gráfico de líneas con la evolución de la matrícula de los principales sectores."),
    "tendencias.dependencia": Template(lambda: multi_line("Dependencia"),
                                       "Gráfico de líneas con la evolución de la matrícula por dependencia."),
    "tendencias.genero": Template(lambda: multi_line("Género"),
                                  "Gráfico de líneas con la evolución de la matrícula de hombres y mujeres."),
}


# Categorical charts: pixels per category (see fill)
STEP_HEIGHT: dict[str, int] = {}


@lru_cache(maxsize=None)
def base_spec(template_id: str) -> dict[str, Any]:
    """The compiled Vega-Lite dict of a template (built once per process; never mutate it)."""
    tpl = TEMPLATES[template_id]
    spec = tpl.build().to_dict(validate=True)
    spec.pop("config", None)  # theme and locale come from charts.theme (browser) or render.py (server)
    spec.pop("$schema", None)
    spec["description"] = tpl.description
    spec["autosize"] = {"type": "fit-x", "contains": "padding"}
    h = spec.get("height")
    if isinstance(h, dict) and "step" in h:
        STEP_HEIGHT[template_id] = int(h["step"])
        spec["height"] = 200
    return spec


def build_all() -> None:
    """Compile every template now (called at import in web/dashboards so gunicorn's preload shares them)."""
    for tid in TEMPLATES:
        base_spec(tid)


def fill(template_id: str, rows: list[dict[str, Any]], title: str | None = None,
         subtitle: str | None = None) -> dict[str, Any]:
    """A spec ready to draw: a shallow copy of the base with the rows (and title) filled in."""
    spec = dict(base_spec(template_id))
    spec["datasets"] = {DATA_NAME: rows}
    step = STEP_HEIGHT.get(template_id)
    if step:
        # a fixed height from the number of categories (a "step" height would not fit the container width)
        cats = len({r.get("cat") for r in rows}) or 1
        spec["height"] = max(step * cats, 44)
    if title:
        spec["title"] = {"text": title, **({"subtitle": subtitle} if subtitle else {})}
    return spec


def for_export(spec: dict[str, Any], width: int = 760) -> dict[str, Any]:
    """A copy of a filled spec with a fixed width (no container to fit when rendering on the server)."""
    out = copy.copy(spec)
    out["width"] = width
    out["autosize"] = {"type": "pad"}
    if "layer" in out:
        # layers inherit width from the top level; nothing else to change
        pass
    return out
