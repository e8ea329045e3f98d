"""The Auditoría page through Flask's test client: access, filters, HTMX fragment, CSV, bad input."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from audit_helpers import login
from visualizador_emtp.audit.index import CHILE_TZ

URL = "/admin/auditoria/"


def _seed(instance, now=None):
    """A known mix of events, all 'today' in Chile time (a few minutes before now)."""
    now = now or datetime.now(timezone.utc)
    today_start = datetime.now(CHILE_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    base = max(now - timedelta(minutes=30), today_start.astimezone(timezone.utc) + timedelta(seconds=1))
    log = instance.audit
    t = iter(base + timedelta(seconds=i) for i in range(1000))
    for _ in range(6):
        log.append("login", actor="intruso", target="intruso", success=False, ip="10.9.9.9",
                   detail={"reason": "bad_password"}, ts=next(t))
    for _ in range(3):
        log.append("login", actor="ana", target="ana", success=True, ip="10.0.0.1", ts=next(t))
    for page in ("resumen", "resumen", "territorio"):
        log.append("page_view", actor="ana", detail={"page": page}, ip="10.0.0.1", ts=next(t))
    log.append("user_create", actor="jefa", target="<script>alert(1)</script>", detail={"role": "analista"},
               ts=next(t))
    log.append("login", actor="=HYPERLINK(\"http://x\")", success=False, detail={"reason": "unknown_user"},
               ts=next(t))
    # 40 days ago: outside 7d and 30d
    log.append("logout", actor="vieja", ts=now - timedelta(days=40))


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def test_admin_sees_the_page_with_summary_alert_and_rows(admin_client, instance):
    _seed(instance)
    r = admin_client.get(URL)
    assert r.status_code == 200
    html = _text(r)
    assert "<h1>Auditoría</h1>" in html and 'extends' not in html
    assert 'hx-push-url="true"' in html and 'hx-get="/admin/auditoria/"' in html
    kpis = dict(re.findall(r'<div class="label">([^<]+)</div><div class="value">([^<]+)</div>', html))
    assert kpis["Ingresos exitosos"] == "4"  # ana ×3 + the admin's own login
    assert kpis["Intentos de ingreso fallidos"] == "7"
    assert kpis["Usuarios distintos"] == "2"  # ana, jefa
    assert "Alerta: usuarios con más de 5 intentos de ingreso fallidos" in html
    assert re.search(r">intruso</a>: 6 intentos fallidos", html)
    assert "<span>Resumen</span><span class=\"num\">2 visitas</span>" in html
    assert "Creación de usuario" in html and "perfil: analista" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "vieja" not in html  # 40 days old, outside the default 7 days


def test_analista_gets_403_and_anonymous_is_sent_to_login(app, make_user):
    make_user("luis", role="analista")
    anon = app.test_client()
    r = anon.get(URL)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    r = anon.get(URL + "export.csv")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    client = app.test_client()
    login(client, "luis")
    assert client.get(URL).status_code == 403
    assert client.get(URL + "export.csv").status_code == 403
    assert client.get(URL, headers={"HX-Request": "true"}).status_code == 403


def test_every_view_of_the_blueprint_is_admin_only(app):
    from visualizador_emtp.auth.permissions import ADMIN, access_level

    views = {ep: fn for ep, fn in app.view_functions.items() if ep.startswith("audit_admin.")}
    assert set(views) == {"audit_admin.index", "audit_admin.export_csv"}
    assert all(access_level(fn) == ADMIN for fn in views.values())


def test_htmx_request_gets_only_the_fragment(admin_client, instance):
    _seed(instance)
    r = admin_client.get(URL + "?periodo=hoy&evento=login&resultado=fail",
                         headers={"HX-Request": "true", "HX-Target": "auditoria-resultados"})
    html = _text(r)
    assert r.status_code == 200
    assert "<html" not in html and "<form" not in html
    rows = re.findall(r"<tr>\s*<td class=\"nowrap\">", html)
    assert len(rows) == 7  # 6 intruso + the formula-looking user
    assert "Exitoso</span>" not in html


def test_filters_by_user_event_and_outcome(admin_client, instance):
    _seed(instance)
    html = _text(admin_client.get(URL + "?periodo=7d&usuario=ANA&evento=page_view"))
    body = html.split("<tbody>")[1]
    assert body.count("<tr>") == 3 and "Vista de tablero" in body and "intruso" not in body
    html = _text(admin_client.get(URL + "?periodo=30d&resultado=ok&usuario=intruso"))
    assert "No hay eventos que coincidan con los filtros." in html
    html = _text(admin_client.get(URL + "?periodo=custom&desde=2000-01-01&hasta=2999-12-31&usuario=vieja"))
    assert html.split("<tbody>")[1].count("<tr>") == 1


def test_paging(admin_client, instance):
    log = instance.audit
    now = datetime.now(timezone.utc)
    for i in range(120):
        log.append("page_view", actor="ana", detail={"page": f"p{i:03d}"}, ts=now - timedelta(seconds=200 - i))
    html = _text(admin_client.get(URL + "?periodo=hoy&evento=page_view&pagina=3"))
    assert "Mostrando 101–120 de 120 · página 3 de 3" in html
    assert "página: p019" in html and "página: p000" in html and "página: p020" not in html
    html = _text(admin_client.get(URL + "?periodo=hoy&evento=page_view&pagina=999999999"))
    assert "La página 999999999 no existe: se muestra la última (3)." in html
    assert "página 3 de 3" in html
    assert 'href="/admin/auditoria/?periodo=hoy&amp;evento=page_view&amp;pagina=2"' in html


BAD_QUERIES = [
    "?periodo=siempre",
    "?periodo=custom&desde=2024-02-30&hasta=ayer",
    "?periodo=custom&desde=9999-12-31&hasta=0001-01-01",
    "?periodo=custom&desde=2025-05-10&hasta=2025-05-01",
    "?periodo=custom",
    "?pagina=-1", "?pagina=abc", "?pagina=1e9", "?pagina=" + "9" * 400,
    "?evento=drop_table", "?evento=%27%3B%20DROP%20TABLE%20events%3B--",
    "?usuario=%27%20OR%201%3D1%20--", "?usuario=" + "x" * 5000, "?usuario=%00%01",
    "?resultado=quizas", "?desde[]=1&periodo[]=x",
]


@pytest.mark.parametrize("qs", BAD_QUERIES)
def test_bad_filter_values_never_fail(admin_client, instance, qs):
    _seed(instance)
    for headers in ({}, {"HX-Request": "true"}):
        r = admin_client.get(URL + qs, headers=headers)
        assert r.status_code == 200, qs
        assert "Ocurrió un error interno" not in _text(r)
    r = admin_client.get(URL + "export.csv" + qs)
    assert r.status_code == 200
    assert r.get_data(as_text=True).startswith("\ufefffecha_hora_chile;")


def test_bad_values_are_explained_in_spanish(admin_client, instance):
    html = _text(admin_client.get(URL + "?periodo=custom&desde=2024-02-30&hasta=2024-03-01"))
    assert "La fecha «desde» no es válida (use el formato AAAA-MM-DD): se ignoró." in html
    html = _text(admin_client.get(URL + "?evento=drop_table"))
    assert "El evento indicado no existe: se muestran todos los eventos." in html
    html = _text(admin_client.get(URL + "?periodo=custom&desde=2025-05-10&hasta=2025-05-01"))
    assert "se intercambiaron" in html and "01-05-2025 al 10-05-2025" in html
    # the injection string is just a user name that matches nothing, and shown escaped
    html = _text(admin_client.get(URL + "?usuario=%3Cb%3E%27%20OR%201%3D1"))
    assert "No hay eventos que coincidan" in html and "&lt;b&gt;&#39; OR 1=1" in html


def test_csv_export_content_and_it_is_audited(admin_client, instance):
    _seed(instance)
    r = admin_client.get(URL + "export.csv?periodo=hoy&evento=login&resultado=fail")
    assert r.status_code == 200
    assert r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="auditoria-')
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    header, data = rows[0], rows[1:]
    assert header[:8] == ["fecha_hora_chile", "ts_utc", "evento", "evento_codigo", "actor", "objetivo",
                          "resultado", "ip"]
    assert len(data) == 7
    assert {row[3] for row in data} == {"login"} and {row[6] for row in data} == {"fallido"}
    assert sum(row[4] == "intruso" for row in data) == 6
    assert "'=HYPERLINK(\"http://x\")" in [row[4] for row in data]  # neutralised for Excel
    assert all(re.fullmatch(r"\d\d-\d\d-\d{4} \d\d:\d\d:\d\d", row[0]) for row in data)
    assert all(len(row) == len(header) for row in data)
    last = json.loads(instance.audit.path.read_text().splitlines()[-1])
    assert (last["event"], last["actor"], last["detail"]) == ("export", "jefa", {"page": "auditoria", "format": "csv"})
    # the export shows up on the page as an event
    html = _text(admin_client.get(URL + "?periodo=hoy&evento=export"))
    assert "página: auditoria; formato: csv" in html


def test_csv_has_every_row_of_the_period(admin_client, instance):
    _seed(instance)
    r = admin_client.get(URL + "export.csv?periodo=custom&desde=2000-01-01&hasta=2999-12-31")
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))[1:]
    hashes = [json.loads(x)["hash"] for x in instance.audit.path.read_text().splitlines()]
    assert len(rows) == len(hashes) == 17  # 15 seeded + the admin login + the export (audited first)
    assert sorted(row[11] for row in rows) != sorted(hashes[:-1])
    assert sorted(row[11] for row in rows) == sorted(hashes)
    stamps = [row[1] for row in rows]
    assert stamps == sorted(stamps, reverse=True)  # newest first
