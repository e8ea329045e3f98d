"""Every registered route × {anonymous, analista, admin} against the real server.

The expected access comes from a written policy, not from the code's own markers:
public pages are an explicit allowlist, /admin/... is admin-only, everything else
needs a login.
"""

from __future__ import annotations

import re
import uuid

import pytest

from integration.conftest import ADMIN, ANALYST, publish_demo_data
from support import WebClient
from visualizador_emtp.app import create_app
from visualizador_emtp.auth.permissions import access_level

PUBLIC_ENDPOINTS = {"auth.index", "auth.login", "health.healthz", "static",
                    "dashboards.vega_bundle"}  # a static script, versioned URL
# sample values for URL parameters, per converter name
SAMPLES = {"int": "1", "default": "1", "string": "1", "path": "css/app.css"}


def expected_level(endpoint: str, path: str) -> str:
    if endpoint in PUBLIC_ENDPOINTS:
        return "public"
    if path.startswith("/admin/"):
        return "admin"
    return "login"


def routes(home):
    app = create_app(home=str(home))
    out = []
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for name, conv in rule._converters.items():
            sample = SAMPLES.get(type(conv).__name__.replace("Converter", "").lower(), "1")
            if rule.endpoint == "static":
                sample = "css/app.css"
            path = re.sub(rf"<(?:[^:<>]+:)?{name}>", sample, path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, path))
    return app, out


def test_every_endpoint_declares_access(live):
    app, _ = routes(live.home)
    for endpoint, view in app.view_functions.items():
        if endpoint == "static":
            continue
        assert access_level(view) is not None, f"{endpoint} has no access marker"
        assert access_level(view) == expected_level(endpoint, next(
            r.rule for r in app.url_map.iter_rules() if r.endpoint == endpoint)), endpoint


@pytest.fixture(scope="module")
def clients(live):
    publish_demo_data(live.home)  # dashboard routes answer with real data (the server picks it up live)
    anon = WebClient(live.url, "172.31.0.10")
    analyst = WebClient(live.url, "172.31.0.11")
    admin = WebClient(live.url, "172.31.0.12")
    anon.get("/login")
    assert analyst.login(*ANALYST).status_code == 302
    assert admin.login(*ADMIN).status_code == 302
    return {"anon": anon, "analista": analyst, "admin": admin}


def test_route_role_matrix(live, clients):
    _, all_routes = routes(live.home)
    assert len(all_routes) >= 8
    checked = 0
    for endpoint, method, path in all_routes:
        if endpoint == "auth.logout" or (endpoint == "auth.login" and method == "POST"):
            continue  # would end the sessions used below / count failed logins; covered in test_web_core
        level = expected_level(endpoint, path)
        for role, client in clients.items():
            headers = {}
            if method != "GET":
                headers["X-CSRF-Token"] = client.csrf("/login") if role == "anon" else client.token()
            r = client.request(method, path, headers=headers, data={})
            status = r.status_code
            where = f"{method} {path} as {role}: {status}"
            assert status < 500, where
            if level == "public":
                assert status not in (401, 403), where
            elif role == "anon":
                assert status == 302 and "/login" in r.headers["Location"], where
            elif level == "admin" and role == "analista":
                assert status == 403, where
            else:
                assert status not in (302, 401, 403) or (status == 302 and "/login" not in r.headers["Location"]), where
            checked += 1
    assert checked >= 24


def test_unknown_routes_are_404_not_500(clients):
    for role, c in clients.items():
        r = c.get("/no-existe/" + uuid.uuid4().hex)
        assert r.status_code == 404
        assert "Página no encontrada" in r.text


def test_healthz_reports_published_data(live, clients):
    body = clients["anon"].get("/healthz").json()
    assert body["status"] == "ok"
    assert body["data"]["status"] == "ok" and body["data"]["refreshed_at"]
    assert body["data"]["years"] == [2024, 2025]


def test_pages_compressed_and_versioned_static_cached_long(live, clients):
    c = clients["analista"]
    r = c.get("/resumen", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers.get("Content-Encoding") == "gzip"
    assert "Resumen" in r.text  # requests decodes it: the body is valid gzip
    r = c.get("/static/css/app.css?v=1", headers={"Accept-Encoding": "gzip"})
    assert "max-age=31536000" in r.headers["Cache-Control"]
    r = c.get("/static/css/app.css")
    assert "max-age=3600" in r.headers["Cache-Control"]
    r = c.get("/healthz", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in r.headers


def test_streamed_csv_export_is_not_buffered_for_gzip(clients):
    r = clients["admin"].get("/admin/auditoria/export.csv?periodo=30d", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert "Content-Encoding" not in r.headers  # streamed as it is read, never gathered in memory
    assert r.headers.get("Transfer-Encoding") == "chunked" or "Content-Length" not in r.headers
    assert "evento" in r.content.decode("utf-8-sig").splitlines()[0].lower()
