"""Mi cuenta: a logged-in user changes their own password, against a real gunicorn with 2 workers."""

from __future__ import annotations

import json
import uuid

import pytest

from support import WebClient
from visualizador_emtp.users import service

PASSWORD = "Clave-propia-1"


@pytest.fixture
def server(live):
    """The module's real gunicorn (integration/conftest.py), its own for this module."""
    return live


@pytest.fixture
def user(server):
    name = "u" + uuid.uuid4().hex[:8]
    service.create_user(server.instance.db, name, PASSWORD, "analista", "Úrsula <i>Prueba</i>", "u@mineduc.cl",
                        bcrypt_rounds=4)
    return name


def client(server) -> WebClient:
    n = uuid.uuid4().int
    return WebClient(server.url, f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}")


def change(c: WebClient, current: str, new: str, confirm: str | None = None):
    return c.post("/cuenta/contrasena", data={"csrf_token": c.token(), "current": current, "password": new,
                                              "confirm": new if confirm is None else confirm})


def events(server, target: str) -> list[dict]:
    lines = server.instance.paths.audit_log.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["target"] == target and e["event"] == "user_password_change"]


def test_account_page_shows_the_user_and_is_linked_from_every_page(server, user):
    c = client(server)
    assert c.login(user, PASSWORD).status_code == 302
    page = c.get("/cuenta")
    assert page.status_code == 200
    assert "Úrsula &lt;i&gt;Prueba&lt;/i&gt;" in page.text and "<i>Prueba</i>" not in page.text
    assert "u@mineduc.cl" in page.text and "Analista" in page.text and "Cambiar contraseña" in page.text
    assert 'href="/cuenta"' in page.text


def test_change_own_password_ends_other_sessions_and_keeps_this_one(server, user):
    here, elsewhere = client(server), client(server)
    assert here.login(user, PASSWORD).status_code == 302
    assert elsewhere.login(user, PASSWORD).status_code == 302
    r = change(here, PASSWORD, "Clave-nueva-22")
    assert r.status_code == 302 and r.headers["Location"].endswith("/cuenta")
    page = here.get("/cuenta")
    assert page.status_code == 200 and "Contraseña actualizada" in page.text
    assert elsewhere.get("/cuenta").status_code == 302  # its session was ended
    assert client(server).login(user, PASSWORD).status_code == 401
    assert client(server).login(user, "Clave-nueva-22").status_code == 302
    ev = events(server, user)
    assert len(ev) == 1 and ev[0]["success"] is True and ev[0]["actor"] == user


@pytest.mark.parametrize("current,new,confirm,message,reason", [
    ("", "Clave-nueva-22", None, "Complete la contraseña actual", "missing"),
    ("Clave-equivocada", "Clave-nueva-22", None, "La contraseña actual no es correcta.", "bad_password"),
    (PASSWORD, "corta", None, "al menos 8 caracteres", "invalid"),
    (PASSWORD, "Clave-nueva-22", "Clave-nueva-23", "Las contraseñas no coinciden.", "invalid"),
    (PASSWORD, "ñ" * 40, None, "máximo 72 bytes", "invalid"),
    (PASSWORD, PASSWORD, None, "debe ser distinta de la actual", "same"),
])
def test_bad_input_is_refused_with_a_message_and_nothing_changes(server, user, current, new, confirm, message,
                                                                 reason):
    c = client(server)
    assert c.login(user, PASSWORD).status_code == 302
    before = service.get_user(server.instance.db, user).password_changed_at
    r = change(c, current, new, confirm)
    assert r.status_code == 422 and message in r.text
    assert service.get_user(server.instance.db, user).password_changed_at == before
    assert client(server).login(user, PASSWORD).status_code == 302
    ev = events(server, user)
    assert ev[-1]["success"] is False and ev[-1]["detail"] == {"reason": reason}


def test_missing_csrf_token_is_refused(server, user):
    c = client(server)
    assert c.login(user, PASSWORD).status_code == 302
    r = c.post("/cuenta/contrasena", data={"current": PASSWORD, "password": "Clave-nueva-22",
                                           "confirm": "Clave-nueva-22"})
    assert r.status_code == 400
    assert client(server).login(user, PASSWORD).status_code == 302


def test_guessing_the_current_password_locks_and_signs_out(server, user):
    c = client(server)
    assert c.login(user, PASSWORD).status_code == 302
    for _ in range(4):
        assert change(c, "Adivinanza-1", "Clave-nueva-22").status_code == 422
    r = change(c, "Adivinanza-1", "Clave-nueva-22")  # the 5th failure in the window
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert c.get("/cuenta").status_code == 302  # signed out
    # the account is locked for logins too, even with the right password, from anywhere
    locked = client(server).login(user, PASSWORD)
    assert locked.status_code == 429 and "Demasiados intentos fallidos" in locked.text
    lines = server.instance.paths.audit_log.read_text().splitlines()
    assert any(e["event"] == "lockout" and e["target"] == user for e in map(json.loads, lines))
