"""The admin pages in a real browser (chromium) against a real gunicorn: Gestión de usuarios through its
HTMX forms (create, edit, deactivate with the browser's confirmation dialog, filters, back button) and the
Auditoría page (failed-login alert, filters, CSV export of what is on screen); Mi cuenta for every user."""

from __future__ import annotations

import csv
import io
import re

import pytest
import requests

import emtp_env

pytestmark = pytest.mark.browser


def htmx(pg, action, path_part: str):
    """Run an action that sends an HTMX request and wait until its response has been swapped in."""
    with pg.expect_response(lambda r: path_part in r.url and r.request.headers.get("hx-request") == "true"):
        action()
    pg.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


def row(pg, username: str):
    return pg.locator("table[aria-label=Usuarios] tbody tr", has=pg.locator("strong", has_text=re.compile(f"^{re.escape(username)}$")))


def test_user_management_create_edit_deactivate(admin_page, dash_env, shots):
    pg = admin_page
    pg.goto(dash_env.base_url + "/admin/usuarios/")
    assert pg.inner_text("h1") == "Gestión de usuarios"
    assert row(pg, emtp_env.USER).count() == 1 and row(pg, emtp_env.ADMIN_USER).count() == 1
    shots(pg, "usuarios_lista")

    # create: the form replaces the list (HTMX) and the URL follows
    htmx(pg, lambda: pg.click("text=+ Crear usuario"), "/admin/usuarios/nuevo")
    assert pg.url.endswith("/admin/usuarios/nuevo")
    assert pg.inner_text("h1") == "Crear usuario"
    pg.fill("input[name=username]", "carla.bt")
    pg.fill("input[name=full_name]", "Carla <b>Pérez</b> Ñuñoa")
    pg.fill("input[name=email]", "carla@example.cl")
    pg.fill("input[name=password]", "Clave-segura-2")
    pg.fill("input[name=confirm]", "Clave-segura-3")
    shots(pg, "usuarios_crear")
    htmx(pg, lambda: pg.click("button:has-text('Guardar')"), "/admin/usuarios/nuevo")
    assert "Las contraseñas no coinciden." in pg.inner_text(".alert-error")
    assert pg.input_value("input[name=full_name]") == "Carla <b>Pérez</b> Ñuñoa"  # what was typed is kept
    pg.fill("input[name=password]", "Clave-segura-2")
    pg.fill("input[name=confirm]", "Clave-segura-2")
    htmx(pg, lambda: pg.click("button:has-text('Guardar')"), "/admin/usuarios/nuevo")
    assert "Usuario 'carla.bt' creado." in pg.inner_text(".alert-success")
    carla = row(pg, "carla.bt")
    assert carla.count() == 1
    # the name is shown as text, never interpreted as markup
    assert carla.locator("td").nth(1).inner_text() == "Carla <b>Pérez</b> Ñuñoa"
    assert carla.locator("b").count() == 0
    assert "Analista" in carla.inner_text() and "Nunca" in carla.inner_text()

    # edit: promote to admin
    htmx(pg, lambda: carla.locator("text=Editar").click(), "/editar")
    assert pg.inner_text("h1") == "Editar usuario carla.bt"
    pg.select_option("select[name=role]", "admin")
    htmx(pg, lambda: pg.click("button:has-text('Guardar')"), "/editar")
    assert "Usuario 'carla.bt' actualizado." in pg.inner_text(".alert-success")
    assert "Administrador" in row(pg, "carla.bt").inner_text()

    # deactivate: the browser's confirmation dialog names the user; accepting it deactivates
    dialogs: list[str] = []

    def accept(d):
        dialogs.append(d.message)
        d.accept()

    pg.once("dialog", accept)
    htmx(pg, lambda: row(pg, "carla.bt").locator("button:has-text('Desactivar')").click(), "/desactivar")
    assert dialogs and "carla.bt" in dialogs[0]
    assert "desactivado" in pg.inner_text(".alert-success")
    assert row(pg, "carla.bt").count() == 0  # the list shows active users by default

    htmx(pg, lambda: pg.select_option("select[name=estado]", "inactivos"), "/admin/usuarios")
    assert "estado=inactivos" in pg.url
    assert "Desactivado" in row(pg, "carla.bt").inner_text()
    assert row(pg, emtp_env.USER).count() == 0
    # the search box filters as you type
    htmx(pg, lambda: pg.fill("input[name=q]", "zzz-nadie"), "/admin/usuarios")
    assert "No hay usuarios que coincidan" in pg.inner_text("#user-list")
    # back restores the previous view of the list
    pg.go_back()
    pg.wait_for_function("() => !document.querySelector('.htmx-request')")
    pg.wait_for_selector("table[aria-label=Usuarios] strong:text-is('carla.bt')")

    # the deactivated account can no longer log in
    s = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(dash_env.base_url + "/login").text).group(1)
    r = s.post(dash_env.base_url + "/login", data={"username": "carla.bt", "password": "Clave-segura-2",
                                                    "csrf_token": token}, allow_redirects=False)
    assert r.status_code == 401 and "Usuario o contraseña incorrectos." in r.text
    # the only console line is chromium's own note of the form's 422 answer: no script error
    assert [e for e in pg.console.errors if "status of 422" not in e] == []


def test_audit_page_alert_filters_and_csv(admin_page, dash_env, shots, tmp_path):
    base = dash_env.base_url
    # six failed logins for one name through the real login form (lockout is relaxed in this instance)
    s = requests.Session()
    for _ in range(6):
        token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(base + "/login").text).group(1)
        s.post(base + "/login", data={"username": "intruso.bt", "password": "no-es-la-clave", "csrf_token": token})

    pg = admin_page
    pg.goto(base + "/admin/auditoria/")
    assert pg.inner_text("h1") == "Auditoría"
    alert = pg.locator(".alert-error", has_text="Alerta")
    assert "intruso.bt: 6 intentos fallidos" in alert.inner_text()
    failed_kpi = pg.locator(".kpi", has_text="Intentos de ingreso fallidos").locator(".value").inner_text()
    assert int(failed_kpi.replace(".", "")) >= 6
    shots(pg, "auditoria")
    # details and visited pages read as Spanish text, numbers in Chilean format
    assert "Resumen" in pg.locator("section", has_text="Tableros más visitados").inner_text()
    refresh_detail = pg.locator(".audit-table tbody tr", has_text="Actualización de datos").first.inner_text()
    assert re.search(r"filas: \d{3}\.\d{3}", refresh_detail) and "None" not in refresh_detail

    # the alert's link opens the page filtered to that user's failed logins, the form showing the filters
    alert.locator("a", has_text="intruso.bt").click()
    pg.wait_for_url(re.compile(r"usuario=intruso\.bt"))
    assert "resultado=fail" in pg.url
    rows = pg.locator(".audit-table tbody tr")
    assert rows.count() == 6
    assert all("Fallido" in t for t in rows.all_inner_texts())
    assert pg.input_value("input[name=usuario]") == "intruso.bt"
    assert pg.input_value("select[name=resultado]") == "fail"
    assert _csv_rows(pg, tmp_path, "fallidos.csv") == [("intruso.bt", "fallido")] * 6

    # another filter through HTMX: the table and the header's CSV button follow it
    dash_env.login()  # at least one successful login of the analyst today
    pg.fill("input[name=usuario]", emtp_env.USER)
    htmx(pg, lambda: pg.press("input[name=usuario]", "Enter"), "/admin/auditoria")
    htmx(pg, lambda: pg.select_option("select[name=resultado]", "ok"), "/admin/auditoria")
    assert "usuario=ana" in pg.url and "resultado=ok" in pg.url
    texts = pg.locator(".audit-table tbody tr").all_inner_texts()
    assert texts and all(emtp_env.USER in t and "Exitoso" in t for t in texts)
    exported = _csv_rows(pg, tmp_path, "ana.csv")
    assert exported and set(exported) == {(emtp_env.USER, "exitoso")}
    assert pg.console.errors == []


def _csv_rows(pg, tmp_path, name: str) -> list[tuple[str, str]]:
    """(actor, resultado) of every row of the CSV that the header's button downloads."""
    with pg.expect_download() as d:
        pg.click("#descargar-csv")
    path = tmp_path / name
    d.value.save_as(path)
    lines = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")), delimiter=";"))
    return [(r["actor"], r["resultado"]) for r in lines]


def test_my_account_from_the_sidebar(page, dash_env, shots):
    """Any user reaches Mi cuenta from the sidebar; a wrong current password is answered in place."""
    pg = page
    pg.click(".sidebar-foot a:has-text('Mi cuenta')")
    pg.wait_for_url("**/cuenta")
    assert pg.inner_text("h1") == "Mi cuenta"
    assert emtp_env.USER in pg.inner_text(".account-data")
    pg.fill("input[name=current]", "no-es-la-clave")
    pg.fill("input[name=password]", "Clave-segura-9")
    pg.fill("input[name=confirm]", "Clave-segura-9")
    pg.click("button:has-text('Cambiar contraseña')")
    pg.wait_for_selector(".alert-error")
    assert "La contraseña actual no es correcta." in pg.inner_text(".alert-error")
    shots(pg, "mi_cuenta")
    assert [e for e in pg.console.errors if "status of 422" not in e] == []
