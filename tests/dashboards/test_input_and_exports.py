"""Bad URLs never give a 500; downloads are valid files; views and exports are audited; the vega
bundle is served from the app (versioned, long-cached, gzip)."""

from __future__ import annotations

import gzip
import io
import json
from urllib.parse import quote

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dash_helpers import chart_rows, login
from visualizador_emtp.charts import bundle

PAGES = ["resumen", "especialidades", "territorio", "establecimientos", "tendencias"]
HX = {"HX-Request": "true", "HX-Target": "tablero"}

BAD_QUERIES = [
    ("region=99", "región"),
    ("region=abc", "región"),
    ("anio=1850", "año"),
    ("anio=2030-2040", None),
    ("anio=hola", "año"),
    ("comuna=13101' OR '1'='1", "comuna"),
    ("sector=<script>alert(1)</script>", "sector"),
    ("especialidad=" + ",".join(str(i) for i in range(1000)), "demasiados valores"),
    ("genero=otro", "género"),
    ("zona=lunar", "zona"),
    ("grado=9", "grado"),
    ("tipo=ninos", "tipo"),
    ("dependencia=-1", "dependencia"),
    ("top=7", "número de especialidades"),
    ("pagina=999999&orden=DROP TABLE&dir=sideways", None),
    ("q=" + "%27%22%3E%3Cimg%20src%3Dx%3E" * 10, None),
    ("region=" + "9" * 5000, None),
]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("query,expected", BAD_QUERIES)
def test_invalid_filters_are_explained_or_ignored(client, page, query, expected):
    for headers in ({}, HX):
        r = client.get(f"/{page}?{query}", headers=headers)
        assert r.status_code == 200, (page, query, r.status_code)
        html = r.get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html and "<img src=x>" not in html
        if expected and (expected != "número de especialidades" or page == "especialidades"):
            assert "Se ignoró" in html and expected in html.lower(), (page, query)
        assert chart_rows(html), "the page still shows charts with the valid part of the selection"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(page=st.sampled_from(PAGES + ["establecimientos/1", "exportar/resumen/rama.csv"]),
       params=st.lists(st.tuples(st.sampled_from(["anio", "region", "comuna", "dependencia", "zona", "rama", "sector",
                                                  "especialidad", "genero", "grado", "tipo", "top", "q", "orden",
                                                  "dir", "pagina", "desde", "hasta", "rbd", "x"]),
                                 st.text(max_size=40)), max_size=8))
def test_random_query_strings_never_fail(client, page, params):
    qs = "&".join(f"{quote(k)}={quote(v)}" for k, v in params)
    r = client.get(f"/{page}?{qs}")
    assert r.status_code in (200, 404), (page, qs, r.status_code)


def test_unknown_school_and_export_targets(client):
    assert client.get("/establecimientos/999999").status_code == 404
    assert "No hay matrícula EMTP" in client.get("/establecimientos/999999").get_data(as_text=True)
    assert client.get("/exportar/resumen/no_existe.png").status_code == 404
    assert client.get("/exportar/otra/rama.png").status_code == 404
    assert client.get("/exportar/resumen/rama.exe").status_code == 404
    assert client.get("/exportar/establecimiento/anios.csv?rbd=abc").status_code == 404


def test_login_required(app):
    anon = app.test_client()
    for path in ["/resumen", "/tendencias", "/establecimientos/1", "/exportar/resumen/rama.csv",
                 "/exportar/resumen.xlsx"]:
        r = anon.get(path)
        assert r.status_code == 302 and "/login" in r.headers["Location"], path


@pytest.mark.parametrize("page,chart", [("resumen", "tendencia"), ("especialidades", "genero_sector"),
                                        ("territorio", "region_sector"), ("establecimientos", "tamano"),
                                        ("tendencias", "sector")])
def test_chart_downloads_are_valid_files(client, page, chart):
    q = "anio=2024-2025&region=13"
    png = client.get(f"/exportar/{page}/{chart}.png?{q}")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.data[:8] == b"\x89PNG\r\n\x1a\n" and len(png.data) > 5000
    assert "attachment" in png.headers["Content-Disposition"]
    svg = client.get(f"/exportar/{page}/{chart}.svg?{q}")
    assert svg.status_code == 200 and svg.data.lstrip().startswith(b"<svg") and b"</svg>" in svg.data
    # Chilean number format inside the picture (thousands with a dot)
    assert any(ch.isdigit() for ch in svg.get_data(as_text=True))
    csv = client.get(f"/exportar/{page}/{chart}.csv?{q}")
    assert csv.status_code == 200
    text = csv.data.decode("utf-8-sig")
    header = text.splitlines()[0]
    assert ";" in header and len(text.splitlines()) > 1


def test_svg_uses_chilean_number_format(client):
    svg = client.get("/exportar/resumen/rama.svg").get_data(as_text=True)
    import re
    labels = re.findall(r">(\d{1,3}(?:\.\d{3})+)<", svg)
    assert labels, "thousands separated with a dot"
    assert not re.findall(r">\d{1,3}(?:,\d{3})+<", svg)


@pytest.mark.parametrize("page", PAGES)
def test_excel_export_opens_in_openpyxl(client, page):
    r = client.get(f"/exportar/{page}.xlsx?anio=2025&genero=mujer")
    assert r.status_code == 200
    assert r.data[:2] == b"PK"
    wb = openpyxl.load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames[0] == "Filtros"
    assert len(wb.sheetnames) >= 3
    filtros = {row[0]: row[1] for row in wb["Filtros"].iter_rows(min_row=6, values_only=True) if row[0]}
    assert filtros["Género"] == "Mujeres"
    sheet = wb[wb.sheetnames[1]]
    values = [c for row in sheet.iter_rows(min_row=5, values_only=True) for c in row if isinstance(c, (int, float))]
    assert values and all(v >= 0 for v in values if v is not None)


def test_school_exports(client, students):
    import pyarrow.compute as pc
    rbd = int(pc.mode(students.column("RBD"))[0]["mode"].as_py())
    r = client.get(f"/exportar/establecimiento/especialidades.png?rbd={rbd}")
    assert r.status_code == 200 and r.data[:4] == b"\x89PNG"
    x = client.get(f"/exportar/establecimiento.xlsx?rbd={rbd}")
    assert x.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(x.data))
    assert str(rbd) in str(wb["Filtros"]["B18"].value or "") or any(
        str(rbd) in str(c) for row in wb["Filtros"].iter_rows(values_only=True) for c in row if c)


def _audit_lines(dash_env):
    path = dash_env.home / "logs" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_page_views_and_exports_are_audited(client, dash_env):
    before = len(_audit_lines(dash_env))
    client.get("/territorio?region=5")
    client.get("/territorio?region=4", headers=HX)  # a fragment: not a page view
    client.get("/exportar/territorio/region.csv?region=5")
    new = _audit_lines(dash_env)[before:]
    views = [e for e in new if e.get("event") == "page_view"]
    exports = [e for e in new if e.get("event") == "export"]
    assert len(views) == 1 and views[0]["detail"]["page"] == "territorio"
    assert views[0]["actor"] == "ana"
    assert len(exports) == 1 and exports[0]["detail"] == {"page": "territorio", "chart": "region", "format": "csv"}


def test_vega_bundle_is_local_versioned_cached_and_compressed(client):
    page = client.get("/resumen").get_data(as_text=True)
    url = f"/recursos/vega-{bundle.version()}.js"
    assert url in page and "cdn" not in page.lower()
    gz = client.get(url, headers={"Accept-Encoding": "gzip, br"})
    assert gz.status_code == 200
    assert gz.headers["Content-Encoding"] == "gzip"
    assert "immutable" in gz.headers["Cache-Control"] and "max-age=31536000" in gz.headers["Cache-Control"]
    assert "Accept-Encoding" in gz.headers.get("Vary", "")
    body = gzip.decompress(gz.data)
    assert b"window.vegaEmbed" in body
    assert len(gz.data) < len(body) / 2
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and plain.data == body
    again = client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": gz.headers["ETag"]})
    assert again.status_code == 304
    assert client.get("/recursos/vega-0_0_0.js").status_code == 404


def test_csp_has_no_unsafe_eval(client):
    r = client.get("/resumen")
    csp = r.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in csp and "script-src 'self'" in csp
    assert "<script>" not in r.get_data(as_text=True)  # no inline executable script


def test_admin_can_open_dashboards(app):
    c = login(app.test_client(), "admin1")
    assert c.get("/resumen").status_code == 200
