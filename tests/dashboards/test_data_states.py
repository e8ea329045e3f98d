"""Missing, corrupted and stale data: every page says so in plain Spanish (and what to do), never a 500
and never an endless spinner."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta, timezone

import pytest

from dash_helpers import login
from visualizador_emtp.app import create_app
from visualizador_emtp.data import cube as cube_mod

PAGES = ["resumen", "especialidades", "territorio", "establecimientos", "tendencias"]
HX = {"HX-Request": "true", "HX-Target": "tablero"}


@pytest.fixture
def fresh(home, make_user):
    make_user("ana")
    cube_mod.clear_cache()
    yield home
    cube_mod.clear_cache()


def _client(home):
    return login(create_app(home=str(home)).test_client())


def _copy_published(dash_env, home):
    dst = home / "data" / "processed"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(dash_env.processed, dst, symlinks=True)
    return dst / "current"


def test_no_data_tells_the_admin_what_to_run(fresh):
    c = _client(fresh)
    for page in PAGES:
        r = c.get(f"/{page}")
        assert r.status_code == 503
        html = r.get_data(as_text=True)
        assert "Los datos no están disponibles" in html and "emtp-admin refresh" in html
        assert 'role="alert"' in html and "spinner" not in html.split('id="tablero"')[1][:600]
        r = c.get(f"/{page}?region=13", headers=HX)
        assert r.status_code == 200 and "emtp-admin refresh" in r.get_data(as_text=True)
    r = c.get("/exportar/resumen/rama.png")
    assert r.status_code == 503 and "emtp-admin refresh" in r.get_data(as_text=True)
    assert c.get("/establecimientos/1").status_code == 503


def test_corrupted_file_is_reported(fresh, dash_env):
    current = _copy_published(dash_env, fresh)
    target = current.resolve() / "cube_completo.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    c = _client(fresh)
    for page in PAGES:
        r = c.get(f"/{page}")
        html = r.get_data(as_text=True)
        assert r.status_code == 503, page
        assert "Los datos no se pueden leer" in html and "dañado" in html and "emtp-admin refresh" in html


def test_unreadable_current_pointer_is_reported(fresh, dash_env):
    current = _copy_published(dash_env, fresh)
    os.unlink(current)
    current.write_text("no soy un enlace")
    r = _client(fresh).get("/resumen")
    assert r.status_code == 503 and "emtp-admin refresh" in r.get_data(as_text=True)


def test_stale_data_shows_a_warning_and_the_date(fresh, dash_env):
    current = _copy_published(dash_env, fresh)
    mpath = current.resolve() / "manifest.json"
    m = json.loads(mpath.read_text())
    old = datetime.now(timezone.utc) - timedelta(days=20)
    m["created_at"] = old.isoformat(timespec="seconds")
    mpath.write_text(json.dumps(m))
    r = _client(fresh).get("/resumen")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "Los datos tienen 20 días" in html and "el límite es 8 días" in html and "emtp-admin refresh" in html
    assert f"Datos actualizados al <strong>{old.astimezone().strftime('%d-%m-%Y')}" in html or \
        "Datos actualizados al <strong>" in html
    assert "fuente: datos de demostración" in html


def test_fresh_data_shows_banner_without_warning(client):
    html = client.get("/resumen").get_data(as_text=True)
    assert "Datos actualizados al <strong>" in html and "fuente: datos de demostración" in html
    assert "Los datos tienen" not in html
