"""The same app and migrations on a real PostgreSQL server (database.url = postgresql+psycopg://…)."""

from __future__ import annotations

import re

import pytest

from support import write_config
from visualizador_emtp.app import create_app
from visualizador_emtp.home import init_home
from visualizador_emtp.instance import Instance
from visualizador_emtp.users import service

CSRF_RE = re.compile(rb'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def pg_instance(tmp_path, postgres_url):
    home = tmp_path / "home"
    write_config(home, f'[database]\nurl = "{postgres_url}"\n[security]\nbcrypt_rounds = 4\ncookie_secure = true\n')
    inst = Instance.load(home)
    init_home(inst, prepare_assets=False)
    yield inst
    inst.db.dispose()


def test_login_users_and_lockout_on_postgresql(pg_instance):
    assert pg_instance.db.engine.dialect.name == "postgresql"
    assert not pg_instance.paths.users_db.exists()  # nothing was written to SQLite
    service.create_user(pg_instance.db, "Jefa", "Clave-admin-123", "admin", bcrypt_rounds=4)
    app = create_app(pg_instance.settings)
    c = app.test_client()
    tok = CSRF_RE.search(c.get("/login").data).group(1).decode()
    r = c.post("/login", data={"username": "jefa", "password": "Clave-admin-123", "csrf_token": tok})
    assert r.status_code == 302
    assert "Secure" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
    tok = CSRF_RE.search(c.get("/admin/usuarios/").data).group(1).decode()
    r = c.post("/admin/usuarios/nuevo", headers={"HX-Request": "true"}, data={
        "csrf_token": tok, "username": "ana", "full_name": "Ana", "email": "ana@mineduc.cl",
        "role": "analista", "password": "Clave-segura-1", "confirm": "Clave-segura-1"})
    assert r.status_code == 200
    r = c.post("/admin/usuarios/nuevo", headers={"HX-Request": "true"}, data={
        "csrf_token": tok, "username": "ANA", "role": "analista", "password": "Clave-segura-1",
        "confirm": "Clave-segura-1"})
    assert r.status_code == 422 and "Ya existe" in r.get_data(as_text=True)
    assert [u.username for u in service.list_users(pg_instance.db)] == ["ana", "Jefa"]
    anon = app.test_client()
    for i in range(5):
        tok = CSRF_RE.search(anon.get("/login").data).group(1).decode()
        anon.post("/login", data={"username": "ana", "password": f"mala{i}", "csrf_token": tok})
    tok = CSRF_RE.search(anon.get("/login").data).group(1).decode()
    r = anon.post("/login", data={"username": "ana", "password": "Clave-segura-1", "csrf_token": tok})
    assert r.status_code == 429
    r = c.get("/healthz")
    assert r.status_code == 200 and r.json["database"]["at_head"]
