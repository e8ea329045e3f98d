"""The dashboards in a real browser (chromium) against a real gunicorn: charts draw, filters travel in
the URL and through the sidebar, back/forward restore views, downloads are valid files."""

from __future__ import annotations

import re

import openpyxl
import pytest

pytestmark = pytest.mark.browser

PAGES = [("resumen", "Resumen", 4), ("especialidades", "Especialidades y sectores", 5),
         ("territorio", "Territorio", 4), ("establecimientos", "Establecimientos", 3),
         ("tendencias", "Tendencias", 5)]


def settle(pg):
    pg.wait_for_load_state("networkidle")
    pg.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling') && "
                         "[...document.querySelectorAll('.vega-chart')].every(e => e.hasAttribute('data-rendered') "
                         "|| e.classList.contains('chart-error'))")


def act(pg, action, path_part: str = ""):
    """Run an action that triggers an HTMX request and wait until its response is swapped and drawn."""
    with pg.expect_response(lambda r: path_part in r.url and r.request.headers.get("hx-request") == "true"):
        action()
    settle(pg)


def rendered_charts(pg) -> int:
    return pg.eval_on_selector_all(".vega-chart[data-rendered] svg", "e => e.length")


@pytest.mark.parametrize("slug,title,charts", PAGES)
def test_every_page_draws_its_charts(page, dash_env, shots, slug, title, charts):
    page.goto(f"{dash_env.base_url}/{slug}")
    settle(page)
    assert page.inner_text("h1") == title
    assert rendered_charts(page) == charts
    assert page.eval_on_selector_all(".chart-error", "e => e.length") == 0
    # accessible: every chart svg is labelled, every chart has its table
    labels = page.eval_on_selector_all(".vega-chart svg[role=img]", "e => e.map(x => x.getAttribute('aria-label'))")
    assert len(labels) == charts and all(labels)
    assert page.eval_on_selector_all("details.chart-table summary", "e => e.length") == charts
    assert "Datos actualizados al" in page.inner_text(".data-banner")
    # Chilean number format in axes and labels
    texts = page.eval_on_selector_all(".vega-chart svg text", "e => e.map(x => x.textContent)")
    if slug != "establecimientos":  # school counts stay below 1.000
        assert any(re.fullmatch(r"\d{1,3}(\.\d{3})+", t) for t in texts), texts[:20]
    assert not any(re.fullmatch(r"\d{1,3}(,\d{3})+", t) for t in texts)
    assert page.console.errors == []
    shots(page, f"tablero_{slug}")


def test_filters_change_url_back_restores_and_nav_keeps_filters(page, dash_env, shots):
    base = dash_env.base_url
    total0 = page.inner_text("#kpi-total .value")
    act(page, lambda: page.select_option("#f-region", "13"))
    assert "region=13" in page.url
    total_rm = page.inner_text("#kpi-total .value")
    assert total_rm != total0
    # comuna options now belong to the Metropolitana only
    comunas = page.eval_on_selector_all("#f-comuna option", "e => e.map(o => o.textContent)")
    assert "Santiago" in comunas and "Arica" not in comunas
    act(page, lambda: page.select_option("#f-genero", "mujer"))
    assert "genero=mujer" in page.url and "region=13" in page.url
    total_rm_m = page.inner_text("#kpi-total .value")
    assert total_rm_m != total_rm
    assert rendered_charts(page) == 4
    shots(page, "filtros_resumen", full_page=False)
    # back restores the previous view (data and form)
    page.go_back()
    page.wait_for_url(re.compile(r".*region=13(?!.*genero).*$"))
    page.wait_for_function("() => document.querySelector('#f-genero') && document.querySelector('#f-genero').value === ''")
    settle(page)
    assert "genero" not in page.url and "region=13" in page.url
    assert page.inner_text("#kpi-total .value") == total_rm
    assert page.input_value("#f-genero") == "" and page.input_value("#f-region") == "13"
    assert rendered_charts(page) == 4
    page.go_forward()
    page.wait_for_url(re.compile(r".*genero=mujer.*"))
    page.wait_for_function("() => document.querySelector('#f-genero') && document.querySelector('#f-genero').value === 'mujer'")
    settle(page)
    assert page.inner_text("#kpi-total .value") == total_rm_m
    # the sidebar carries the selection to the other pages
    href = page.get_attribute("a[data-nav='dashboards.territorio']", "href")
    assert "region=13" in href and "genero=mujer" in href
    page.click("a[data-nav='dashboards.territorio']")
    settle(page)
    assert page.url.startswith(f"{base}/territorio?") and page.input_value("#f-region") == "13"
    assert page.input_value("#f-genero") == "mujer"
    assert "Metropolitana" in page.inner_text("#g-comuna h2")
    # a shared link opens the same view in a fresh load
    url = page.url
    page.goto(url)
    settle(page)
    assert page.input_value("#f-region") == "13" and page.input_value("#f-genero") == "mujer"
    # limpiar filtros
    act(page, lambda: page.click("#limpiar-filtros"))
    assert page.url == f"{base}/territorio"
    assert page.input_value("#f-region") == "" and page.input_value("#f-genero") == ""
    assert page.console.errors == []


def test_year_range_and_dependent_specialty_options(page, dash_env):
    page.goto(dash_env.base_url + "/tendencias")
    settle(page)
    act(page, lambda: page.select_option("#f-desde", "2023"))
    act(page, lambda: page.select_option("#f-hasta", "2024"))
    assert "anio=2023-2024" in page.url
    years = page.eval_on_selector_all("#g-total details table tbody th", "e => e.map(x => x.textContent.trim())")
    assert years == ["2023", "2024"]
    page.goto(dash_env.base_url + "/especialidades")
    settle(page)
    all_espe = page.eval_on_selector_all("#f-especialidad option", "e => e.length")
    act(page, lambda: page.select_option("#f-sector", "520"))
    espe = page.eval_on_selector_all("#f-especialidad option", "e => e.map(o => o.value)")
    assert 1 < len(espe) < all_espe and all(v == "" or v.startswith("52") for v in espe)
    assert page.console.errors == []


def test_loading_indicator_is_shown_while_a_fragment_loads(page, dash_env):
    page.route("**/resumen?*", lambda route: (page.wait_for_timeout(600), route.continue_()))
    page.select_option("#f-dependencia", "2")
    page.wait_for_selector("#carga.htmx-request", state="visible", timeout=3000)
    assert "Cargando" in page.inner_text("#carga")
    settle(page)
    assert not page.is_visible("#carga")


def test_downloads_are_valid_files(page, dash_env, tmp_path):
    page.goto(dash_env.base_url + "/especialidades?anio=2025&region=5")
    settle(page)
    got = {}
    for fmt in ("png", "svg", "csv"):
        with page.expect_download() as d:
            page.click(f"#g-sector a[data-format={fmt}]")
        path = tmp_path / d.value.suggested_filename
        d.value.save_as(path)
        got[fmt] = path.read_bytes()
        assert d.value.suggested_filename == f"emtp_especialidades_sector_2025.{fmt}"
    assert got["png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert got["svg"].lstrip().startswith(b"<svg") and b"</svg>" in got["svg"]
    assert got["csv"].decode("utf-8-sig").splitlines()[0] == "Sector;Estudiantes;% del total"
    with page.expect_download() as d:
        page.click("#exportar-excel")
    path = tmp_path / d.value.suggested_filename
    d.value.save_as(path)
    wb = openpyxl.load_workbook(path)
    assert "Filtros" in wb.sheetnames and len(wb.sheetnames) >= 5
    assert any("Valparaíso" in str(c) for row in wb["Filtros"].iter_rows(values_only=True) for c in row if c)


def test_school_search_sort_page_and_detail(page, dash_env, shots):
    page.goto(dash_env.base_url + "/establecimientos")
    settle(page)
    charts_before = page.eval_on_selector_all(".vega-chart svg", "e => e.length")
    page.fill("#q", "industrial")
    page.wait_for_url(re.compile(r".*q=industrial.*"))
    settle(page)
    summary = page.inner_text("#escuelas-resumen")
    assert "coinciden con «industrial»" in summary
    names = page.eval_on_selector_all("table.schools tbody th", "e => e.map(x => x.textContent.trim())")
    assert names and all("INDUSTRIAL" in n.upper() for n in names)
    # only the table was swapped: charts are the same elements
    assert page.eval_on_selector_all(".vega-chart svg", "e => e.length") == charts_before
    page.click("table.schools th a.sort:has-text('Establecimiento')")
    page.wait_for_url(re.compile(r".*orden=nombre.*"))
    settle(page)
    names = page.eval_on_selector_all("table.schools tbody th", "e => e.map(x => x.textContent.trim())")
    assert names == sorted(names, key=lambda s: s.lower().replace("í", "i").replace("é", "e").replace("ó", "o"))
    if page.is_visible("a[rel=next]"):
        page.click("a[rel=next]")
        page.wait_for_url(re.compile(r".*pagina=2.*"))
        assert "página 2" in page.inner_text("#escuelas-resumen")
        page.go_back()
        page.wait_for_timeout(300)
        settle(page)
        assert "página 1" in page.inner_text("#escuelas-resumen")
    shots(page, "tablero_establecimientos_busqueda", full_page=False)
    page.click("table.schools tbody th a >> nth=0")
    settle(page)
    assert "/establecimientos/" in page.url
    assert rendered_charts(page) == 3
    assert "RBD" in page.inner_text(".page-head")
    shots(page, "ficha_establecimiento")
    assert page.console.errors == []


def test_dark_theme_redraws_charts(page, dash_env, shots):
    page.goto(dash_env.base_url + "/territorio")
    settle(page)
    light_fill = page.eval_on_selector("#g-region .vega-chart svg .mark-rect path", "e => e.getAttribute('fill')")
    page.click("[data-theme-toggle]")
    page.wait_for_function(
        "(f) => { const p = document.querySelector('#g-region .vega-chart svg .mark-rect path'); return p && p.getAttribute('fill') !== f; }",
        arg=light_fill)
    assert page.get_attribute("html", "data-theme") == "dark"
    assert rendered_charts(page) == 4
    shots(page, "tablero_territorio_oscuro")
    page.click("[data-theme-toggle]")
    assert page.console.errors == []


def test_tablet_layout(browser, dash_env, shots):
    ctx = browser.new_context(viewport={"width": 820, "height": 1180}, device_scale_factor=1)
    pg = ctx.new_page()
    pg.goto(dash_env.base_url + "/login")
    pg.fill("input[name=username]", "ana")
    pg.fill("input[name=password]", "Clave-segura-1")
    pg.click("button[type=submit]")
    pg.wait_for_url("**/resumen")
    settle(pg)
    width = pg.evaluate("document.documentElement.scrollWidth")
    assert width <= 820, "no horizontal scroll on a tablet"
    assert rendered_charts(pg) == 4
    shots(pg, "tablero_resumen_tablet", full_page=False)
    ctx.close()


def test_pages_work_without_javascript(browser, dash_env):
    ctx = browser.new_context(java_script_enabled=False)
    pg = ctx.new_page()
    pg.goto(dash_env.base_url + "/login")
    pg.fill("input[name=username]", "ana")
    pg.fill("input[name=password]", "Clave-segura-1")
    pg.click("button[type=submit]")
    pg.wait_for_url("**/resumen")
    pg.select_option("#f-region", "5")
    pg.click("#filtros button[type=submit]")
    pg.wait_for_url(re.compile(r".*region=5.*"))
    assert pg.input_value("#f-region") == "5"
    assert "Valparaíso" in pg.inner_text("#panel") or pg.inner_text("#kpi-total .value")
    assert pg.is_visible("details.chart-table summary")
    ctx.close()
