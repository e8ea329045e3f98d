"""Dashboards: Resumen, Especialidades, Territorio, Establecimientos (+ ficha) and Tendencias.

Every page works as a plain full-page GET (filters in the query string) and, with htmx, swaps
only ``#tablero`` (filters + charts) on a filter change or ``#tabla-escuelas`` on a search,
sort or page change. Charts are Vega-Lite specs compiled once (charts.specs) and filled per
request with aggregated rows from the cube; downloads (PNG, SVG, CSV, Excel) are rendered
on the server from the same rows.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, render_template, request, send_file, url_for
from werkzeug.datastructures import MultiDict

from visualizador_emtp.auth.permissions import login_required, public
from visualizador_emtp.charts import bundle, export, pages, render, specs, theme
from visualizador_emtp.data.cube import Cube, DataUnavailable, Filters, get_cube
from visualizador_emtp.web.context import audit, instance
from markupsafe import Markup, escape

from visualizador_emtp.web.formatting import local_dt, miles, pct, signed_pct
from visualizador_emtp.web.htmx import htmx_target, is_htmx, render_page

log = logging.getLogger(__name__)

bp = Blueprint("dashboards", __name__)

specs.build_all()  # compile every chart once, at import (shared by gunicorn workers via preload)

PAGE_PARAMS = {"especialidades": ("top",), "establecimientos": ("q", "orden", "dir", "pagina")}
SOURCE_LABELS = {
    "sqlserver": "SQL Server (SIGE)", "csv": "archivos CSV de MINEDUC", "rds": "archivos RDS",
    "parquet": "archivos Parquet", "demo": "datos de demostración",
}
NO_DATA = ("Los datos no están disponibles: todavía no se ha publicado ninguna versión. "
           "Un administrador debe ejecutar 'emtp-admin refresh' (o 'emtp-admin demo-data' para datos de "
           "demostración).")
CHART_FORMATS = {"png": "image/png", "svg": "image/svg+xml", "csv": "text/csv; charset=utf-8"}
MAX_QUERY_LEN = 4000


# --------------------------------------------------------------------------------------------
# Data state and filters
@dataclass
class DataState:
    cube: Cube | None
    error: str = ""
    refreshed: str = ""
    source: str = ""
    stale: str = ""


def _data_state() -> DataState:
    inst = instance()
    try:
        cube = get_cube(inst.paths.processed_dir)
    except DataUnavailable as exc:
        log.error("Datos no disponibles: %s", exc)
        return DataState(None, error=f"Los datos no se pueden leer. {exc} Mientras tanto, los tableros no "
                                     f"muestran cifras.")
    except Exception:  # an unexpected failure of the data layer must not become a 500 without a message
        log.exception("Error al abrir los datos publicados")
        return DataState(None, error="Los datos no se pueden leer (error inesperado, detallado en logs/app.log). "
                                     "Un administrador debe ejecutar 'emtp-admin doctor' y luego "
                                     "'emtp-admin refresh'.")
    if cube is None or not cube.years:
        return DataState(None, error=NO_DATA)
    manifest = cube.manifest or {}
    raw = manifest.get("refreshed_at") or manifest.get("created_at") or ""
    src = manifest.get("source") or ""
    kind = str(src.get("kind", "")) if isinstance(src, dict) else str(src)
    state = DataState(cube, refreshed=local_dt(raw, "%d-%m-%Y") if raw else "",
                      source=SOURCE_LABELS.get(kind, kind))
    try:
        when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        age = (datetime.now(timezone.utc) - when).days
        limit = inst.settings["data.stale_days"]
        if age > limit:
            state.stale = (f"Los datos tienen {age} días (última actualización {state.refreshed}); el límite es "
                           f"{limit} días. Un administrador debe ejecutar 'emtp-admin refresh' o revisar "
                           f"logs/actualizacion_datos.log.")
    except (TypeError, ValueError):
        state.stale = ("No se sabe cuándo se actualizaron los datos (el manifiesto no tiene fecha). "
                       "Un administrador debe ejecutar 'emtp-admin refresh'.")
    return state


def _args() -> tuple[MultiDict, list[str]]:
    """Request args with the form's desde/hasta merged into anio (a plain GET form sends those)."""
    warnings: list[str] = []
    if len(request.query_string) > MAX_QUERY_LEN:
        warnings.append("La dirección es demasiado larga; se ignoraron los filtros.")
        return MultiDict(), warnings
    args = MultiDict(request.args)
    desde, hasta = args.pop("desde", "").strip(), args.pop("hasta", "").strip()
    if desde or hasta:
        if not args.get("anio"):
            if desde and hasta:
                args["anio"] = f"{desde}-{hasta}"
            else:
                args["anio"] = desde or hasta
    return args, warnings


def _page_params(page: str, args: MultiDict) -> tuple[tuple[str, str], ...]:
    out = []
    for name in PAGE_PARAMS.get(page, ()):
        v = (args.get(name) or "").strip()[:80]
        if v:
            out.append((name, v))
    return tuple(out)


def _int(text: str, default: int) -> int:
    return int(text) if re.fullmatch(r"\d{1,6}", text or "") else default


def _view(page: str, cube: Cube) -> tuple[pages.View, list[str]]:
    args, warnings = _args()
    filters, w = Filters.from_query(args)
    warnings += w
    params = _page_params(page, args)
    top = _int(args.get("top", ""), pages.DEFAULT_TOP)
    if page == "especialidades" and args.get("top") and top not in pages.TOP_CHOICES:
        warnings.append("Se ignoró el número de especialidades a mostrar: elija una de las opciones.")
        top = pages.DEFAULT_TOP
    v, notes = pages.make_view(cube, filters, top=top, params=params)
    return v, warnings + notes


def filter_query(f: Filters) -> list[tuple[str, str]]:
    return f.to_query()


def _url(endpoint: str, pairs: list[tuple[str, str]] | tuple = (), **values) -> str:
    base = url_for(endpoint, **values)
    return f"{base}?{urlencode(list(pairs))}" if pairs else base


# --------------------------------------------------------------------------------------------
# Tables (rendered in Python: a Jinja macro per cell costs several ms on the larger pages)
def format_cell(value, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "int":
        return miles(value)
    if kind == "pct":
        return pct(value * 100)
    if kind == "signed":
        return signed_pct(value * 100)
    return str(value)


@bp.app_template_global("dash_table")
def dash_table(columns, rows, caption: str = "", heat: bool = False) -> Markup:
    out = ['<div class="table-wrap"><table class="data">']
    if caption:
        out.append(f'<caption class="sr-only">{escape(caption)}</caption>')
    out.append("<thead><tr>")
    for _, header, kind in columns:
        out.append(f'<th scope="col" class="num">{escape(header)}</th>' if kind != "text"
                   else f'<th scope="col">{escape(header)}</th>')
    out.append("</tr></thead><tbody>")
    if not rows:
        out.append(f'<tr><td colspan="{len(columns)}" class="muted">Sin datos con los filtros elegidos.</td></tr>')
    for r in rows:
        out.append("<tr>")
        for i, (key, _, kind) in enumerate(columns):
            text = escape(format_cell(r.get(key), kind))
            if i == 0:
                out.append(f'<th scope="row">{text}</th>')
            elif heat and key[0] == "s" and key[1:].isdigit():
                share = r.get("p" + key[1:])
                if share is None:
                    out.append(f'<td class="num heat">{text}</td>')
                else:
                    out.append(f'<td class="num heat" style="--h: {share:.3f}" '
                               f'title="{escape(format_cell(share, "pct"))} de la región">{text}</td>')
            elif kind == "text":
                out.append(f"<td>{text}</td>")
            else:
                out.append(f'<td class="num">{text}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return Markup("".join(out))


@bp.app_template_global("dash_options")
def dash_options(options, value: str) -> Markup:
    """<option> elements of a filter (hundreds for comunas: cheaper here than in a Jinja loop)."""
    return Markup("".join(
        f'<option value="{escape(v)}" selected>{escape(label)}</option>' if v == value
        else f'<option value="{escape(v)}">{escape(label)}</option>' for v, label in options))


# --------------------------------------------------------------------------------------------
# Filter form
def _selected(values: tuple, fmt=str) -> str:
    if not values:
        return ""
    return ",".join(fmt(x) for x in values)


def filter_fields(cube: Cube, v: pages.View, page: str) -> list[dict]:
    f = v.filters
    opts = cube.options(f)
    years = [str(y) for y in cube.years]
    fields = [
        {"name": "desde", "label": "Año desde", "options": [(y, y) for y in years], "value": str(v.years[0]),
         "all": None},
        {"name": "hasta", "label": "Año hasta", "options": [(y, y) for y in years], "value": str(v.years[-1]),
         "all": None},
        {"name": "region", "label": "Región", "value": _selected(f.regions), "all": "Todas"},
        {"name": "comuna", "label": "Comuna", "value": _selected(f.comunas), "all": "Todas"},
        {"name": "dependencia", "label": "Dependencia", "value": _selected(f.dependencias), "all": "Todas"},
        {"name": "zona", "label": "Zona", "value": {None: "", 0: "urbano", 1: "rural"}[f.rural], "all": "Urbana y rural"},
        {"name": "rama", "label": "Rama", "value": _selected(f.ramas), "all": "Todas"},
        {"name": "sector", "label": "Sector económico", "value": _selected(f.sectores), "all": "Todos"},
        {"name": "especialidad", "label": "Especialidad", "value": _selected(f.especialidades), "all": "Todas"},
        {"name": "genero", "label": "Género", "value": {(): "", (1,): "hombre", (2,): "mujer"}.get(f.generos, ""),
         "all": "Hombres y mujeres"},
        {"name": "tipo", "label": "Jóvenes / adultos", "value": f.tipo or "", "all": "Jóvenes y adultos"},
        {"name": "grado", "label": "Grado / nivel", "value": _selected(f.grados), "all": "Todos"},
    ]
    for fd in fields:
        if "options" not in fd:
            fd["options"] = [(str(c), label) for c, label in opts.get(fd["name"], [])]
        values = {o[0] for o in fd["options"]}
        if fd["value"] and fd["value"] not in values:
            n = len(fd["value"].split(","))
            label = f"Varias ({n})" if n > 1 else "Sin datos con estos filtros"
            fd["options"] = [(fd["value"], label)] + fd["options"]
    if page == "especialidades":
        fields.append({"name": "top", "label": "N° de especialidades", "value": str(v.top),
                       "options": [(str(t), "Todas" if t == 0 else f"Las {t} principales") for t in pages.TOP_CHOICES],
                       "all": None})
    return fields


# --------------------------------------------------------------------------------------------
# Rendering
def _common(page: str, endpoint: str, state: DataState) -> dict:
    return {"page": page, "page_title": pages.PAGES[page], "endpoint": endpoint, "data": state,
            "vega_js": url_for("dashboards.vega_bundle", version=bundle.version()),
            "chart_settings": theme.client_settings()}


def _render_dashboard(page: str):
    endpoint = f"dashboards.{page}"
    state = _data_state()
    ctx = _common(page, endpoint, state)
    full = not is_htmx()
    if full:
        audit("page_view", target=page, detail={"page": page})
    if state.cube is None:
        ctx.update(warnings=[], query="", fields=[], pd=None)
        body = render_page("dashboards/page.html", "dashboards/_tablero.html", **ctx)
        return body, (503 if full else 200)
    cube = state.cube
    v, warnings = _view(page, cube)
    pd = pages.BUILDERS[page](cube, v)
    query = filter_query(v.filters) if request.args else []
    ctx.update(v=v, pd=pd, warnings=warnings, fields=filter_fields(cube, v, page),
               query=urlencode(query), query_pairs=query)
    if page == "establecimientos":
        ctx.update(_school_list(v, pd, query))
        if is_htmx() and htmx_target() == "tabla-escuelas":
            return render_template("dashboards/_tabla_escuelas.html", **ctx)
    return render_page("dashboards/page.html", "dashboards/_tablero.html", **ctx)


def _school_list(v: pages.View, pd: pages.PageData, query: list[tuple[str, str]]) -> dict:
    q = v.param("q")
    orden = v.param("orden", "matricula")
    if orden not in pages.SORTS:
        orden = "matricula"
    d = v.param("dir")
    desc = {"asc": False, "desc": True}.get(d)
    rows, total, n_pages, page_no = pages.search_schools(pd.extra["schools"], q, orden, desc,
                                                          _int(v.param("pagina"), 1))
    desc_eff = pages.SORTS[orden][1] if desc is None else desc

    def link(**changes) -> str:
        state = {"q": q, "orden": orden, "dir": "desc" if desc_eff else "asc", "pagina": str(page_no)}
        state.update({k: str(val) for k, val in changes.items()})
        extra = [(k, val) for k, val in state.items() if val and not (k == "pagina" and val == "1")]
        return _url("dashboards.establecimientos", list(query) + extra)

    sort_links = {}
    for key, (_, default_desc) in pages.SORTS.items():
        if key == orden:
            sort_links[key] = link(orden=key, dir="asc" if desc_eff else "desc", pagina=1)
        else:
            sort_links[key] = link(orden=key, dir="desc" if default_desc else "asc", pagina=1)
    return {
        "schools": rows, "schools_total": total, "schools_pages": n_pages, "schools_page": page_no,
        "q": q, "orden": orden, "desc": desc_eff, "sort_links": sort_links,
        "prev_link": link(pagina=page_no - 1) if page_no > 1 else "",
        "next_link": link(pagina=page_no + 1) if page_no < n_pages else "",
        "detail_query": urlencode(list(query)),
    }


@bp.get("/resumen")
@login_required
def resumen():
    return _render_dashboard("resumen")


@bp.get("/especialidades")
@login_required
def especialidades():
    return _render_dashboard("especialidades")


@bp.get("/territorio")
@login_required
def territorio():
    return _render_dashboard("territorio")


@bp.get("/establecimientos")
@login_required
def establecimientos():
    return _render_dashboard("establecimientos")


@bp.get("/tendencias")
@login_required
def tendencias():
    return _render_dashboard("tendencias")


@bp.get("/establecimientos/<int:rbd>")
@login_required
def establecimiento(rbd: int):
    state = _data_state()
    ctx = _common("establecimiento", "dashboards.establecimientos", state)
    if not is_htmx():
        audit("page_view", target=str(rbd), detail={"page": "establecimiento", "rbd": rbd})
    if state.cube is None:
        ctx.update(pd=None, warnings=[], query="")
        return render_template("dashboards/establecimiento.html", **ctx), 503
    v, warnings = _view("establecimiento", state.cube)
    pd = pages.establecimiento(state.cube, rbd, v) if rbd <= 99_999_999 else None
    query = filter_query(v.filters) if request.args else []
    ctx.update(v=v, pd=pd, warnings=warnings, query=urlencode(query), rbd=rbd)
    if pd is None:
        ctx["not_found"] = f"No hay matrícula EMTP registrada para el RBD {rbd}."
        return render_template("dashboards/establecimiento.html", **ctx), 404
    return render_template("dashboards/establecimiento.html", **ctx)


# --------------------------------------------------------------------------------------------
# Downloads
def _page_for_export(page: str):
    state = _data_state()
    if state.cube is None:
        return None, None, state.error
    v, _ = _view(page if page != "establecimiento" else "establecimiento", state.cube)
    if page == "establecimiento":
        rbd = _int(request.args.get("rbd", ""), 0)
        pd = pages.establecimiento(state.cube, rbd, v) if rbd else None
        if pd is None:
            return None, v, "No hay matrícula EMTP registrada para ese RBD."
        return pd, v, ""
    return pages.BUILDERS[page](state.cube, v), v, ""


def _message(text: str, code: int) -> Response:
    return Response(text + "\n", status=code, mimetype="text/plain")


def _filename(page: str, chart: str, v: pages.View | None, ext: str, pd: pages.PageData | None = None) -> str:
    parts = ["emtp", page]
    if page == "establecimiento" and pd is not None:
        parts.append(str(pd.extra["school"]["RBD"]))
    if chart:
        parts.append(chart)
    if v is not None:
        parts.append(f"{v.years[0]}-{v.years[-1]}" if len(v.years) > 1 else str(v.last_year))
    return "_".join(parts) + "." + ext


@bp.get("/exportar/<page>/<chart>.<fmt>")
@login_required
def export_chart(page: str, chart: str, fmt: str):
    if page not in pages.PAGES or fmt not in CHART_FORMATS:
        return _message("Formato o página desconocidos: use png, svg o csv.", 404)
    pd, v, error = _page_for_export(page)
    if pd is None:
        return _message(error, 503 if v is None else 404)
    c = pd.chart(chart)
    if c is None:
        return _message("Ese gráfico no existe en esta página.", 404)
    if fmt == "csv":
        data = render.to_csv(c.columns, c.table_rows)
    elif c.empty:
        return _message("No hay datos para este gráfico con los filtros elegidos.", 404)
    elif fmt == "svg":
        data = render.to_svg(c.spec()).encode("utf-8")
    else:
        data = render.to_png(c.spec())
    audit("export", target=page, detail={"page": page, "chart": chart, "format": fmt})
    return send_file(io.BytesIO(data), mimetype=CHART_FORMATS[fmt], as_attachment=True,
                     download_name=_filename(page, chart, v, fmt, pd), max_age=0)


@bp.get("/exportar/<page>.xlsx")
@login_required
def export_xlsx(page: str):
    if page not in pages.PAGES:
        return _message("Página desconocida.", 404)
    pd, v, error = _page_for_export(page)
    if pd is None:
        return _message(error, 503 if v is None else 404)
    state = _data_state()
    data = export.workbook(pd, v, pages.PAGES[page], data_date=state.refreshed, source=state.source)
    audit("export", target=page, detail={"page": page, "chart": "", "format": "xlsx"})
    return send_file(io.BytesIO(data), as_attachment=True, download_name=_filename(page, "", v, "xlsx", pd),
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", max_age=0)


# --------------------------------------------------------------------------------------------
# The vega bundle: generated offline on first use, long-cached, gzip when accepted
@bp.get("/recursos/vega-<version>.js")
@public
def vega_bundle(version: str):
    if version != bundle.version():
        abort(404)
    plain, packed = bundle.ensure(instance().paths.data_dir / "cache" / "vega")
    gz = "gzip" in (request.headers.get("Accept-Encoding") or "").lower()
    resp = send_file(packed if gz else plain, mimetype="text/javascript", conditional=True,
                     etag=f"{version}{'-gz' if gz else ''}", max_age=31536000)
    if gz:
        resp.headers["Content-Encoding"] = "gzip"
    resp.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    resp.vary.add("Accept-Encoding")
    return resp
