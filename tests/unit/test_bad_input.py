"""Bad input on the login and user forms: a Spanish message or a 4xx, never a 500, nothing written."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from visualizador_emtp.app import create_app
from visualizador_emtp.users.models import User

CSRF_RE = re.compile(rb'name="csrf_token" value="([^"]+)"')

NASTY = [
    "", " ", "\t\n", "a" * 5000, "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>",
    "'; DROP TABLE users; --", "admin' OR '1'='1", "ñandú", "Ωmega", "😀" * 10, "\x00", "\u202e",
    "../../etc/passwd", "{{ 7*7 }}", "%s%s%n",
]


@pytest.fixture
def admin_client(instance, make_user):
    make_user("jefa", role="admin", password="Clave-admin-123")
    app = create_app(instance.settings)
    c = app.test_client()
    tok = CSRF_RE.search(c.get("/login").data).group(1).decode()
    r = c.post("/login", data={"username": "jefa", "password": "Clave-admin-123", "csrf_token": tok})
    assert r.status_code == 302
    c.csrf = CSRF_RE.search(c.get("/admin/usuarios/").data).group(1).decode()
    return c


def count_users(instance) -> int:
    with instance.db.session() as s:
        return s.scalar(select(func.count()).select_from(User))


def post_create(c, **fields):
    data = {"csrf_token": c.csrf, "role": "analista", **fields}
    return c.post("/admin/usuarios/nuevo", data=data, headers={"HX-Request": "true"})


@pytest.mark.parametrize("value", NASTY)
def test_nasty_usernames_refused_with_message(admin_client, instance, value):
    before = count_users(instance)
    r = post_create(admin_client, username=value, password="Clave-segura-1", confirm="Clave-segura-1")
    assert r.status_code == 422
    assert "alert-error" in r.get_data(as_text=True)
    assert count_users(instance) == before


@pytest.mark.parametrize("value", NASTY)
def test_nasty_names_are_stored_or_refused_and_always_escaped(admin_client, instance, value):
    before = count_users(instance)
    r = post_create(admin_client, username=f"u{abs(hash(value)) % 10**8}", full_name=value,
                    password="Clave-segura-1", confirm="Clave-segura-1")
    assert r.status_code in (200, 422)
    body = r.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body and "<img src=x" not in body
    assert count_users(instance) == before + (1 if r.status_code == 200 else 0)
    listing = admin_client.get("/admin/usuarios/?estado=todos").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in listing


def test_html_in_email_refused(admin_client, instance):
    before = count_users(instance)
    r = post_create(admin_client, username="correo1", email="<b>x</b>@x.cl", password="Clave-segura-1",
                    confirm="Clave-segura-1")
    assert r.status_code == 422 and "correo" in r.get_data(as_text=True)
    assert count_users(instance) == before


@pytest.mark.parametrize("password, message", [
    ("corta", "al menos 8 caracteres"),
    ("ñ" * 37, "máximo 72 bytes"),            # 37 characters but 74 bytes
    ("a" * 73, "máximo 72 bytes"),
    ("        ", "no puede estar vacía"),
])
def test_password_rules(admin_client, instance, password, message):
    before = count_users(instance)
    r = post_create(admin_client, username="claveprueba", password=password, confirm=password)
    assert r.status_code == 422 and message in r.get_data(as_text=True)
    assert count_users(instance) == before


def test_password_confirmation_mismatch(admin_client, instance):
    r = post_create(admin_client, username="mismatch", password="Clave-segura-1", confirm="Clave-segura-2")
    assert r.status_code == 422 and "no coinciden" in r.get_data(as_text=True)


def test_tampered_session_cookie_is_anonymous(admin_client):
    cookie = admin_client.get_cookie("emtp_session")
    assert cookie is not None
    value = cookie.value
    tampered = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    admin_client.set_cookie("emtp_session", tampered)
    r = admin_client.get("/admin/usuarios/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    admin_client.set_cookie("emtp_session", "basura-total")
    assert admin_client.get("/cuenta").status_code == 302


def test_login_with_nasty_input_never_500(instance):
    app = create_app(instance.settings)
    c = app.test_client()
    for value in NASTY:
        tok = CSRF_RE.search(c.get("/login").data).group(1).decode()
        r = c.post("/login", data={"username": value, "password": value, "csrf_token": tok})
        assert r.status_code in (401, 429), (value, r.status_code)
        assert "Usuario o contraseña incorrectos" in r.get_data(as_text=True) or r.status_code == 429
    r = c.get("/login?next=//evil.example.com")
    assert r.status_code == 200 and "evil.example.com" not in r.get_data(as_text=True)


def test_open_redirect_refused(instance, make_user):
    make_user("ana", password="Clave-segura-1")
    c = create_app(instance.settings).test_client()
    tok = CSRF_RE.search(c.get("/login").data).group(1).decode()
    r = c.post("/login", data={"username": "ana", "password": "Clave-segura-1", "csrf_token": tok,
                               "next": "//evil.example.com/x"})
    assert r.status_code == 302 and "evil" not in r.headers["Location"]


def test_oversized_body_is_413(admin_client):
    r = admin_client.post("/admin/usuarios/nuevo", data={"csrf_token": admin_client.csrf, "full_name": "x" * 2_000_000})
    assert r.status_code == 413


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(username=st.text(max_size=80), full_name=st.text(max_size=250), email=st.text(max_size=80),
       role=st.sampled_from(["admin", "analista", "", "root", "ADMIN"]), password=st.text(max_size=90))
def test_create_form_property(admin_client, instance, username, full_name, email, role, password):
    before = count_users(instance)
    r = admin_client.post("/admin/usuarios/nuevo", headers={"HX-Request": "true"}, data={
        "csrf_token": admin_client.csrf, "username": username, "full_name": full_name, "email": email,
        "role": role, "password": password, "confirm": password})
    assert r.status_code in (200, 422)
    after = count_users(instance)
    assert after == before + (1 if r.status_code == 200 else 0)
    if r.status_code == 422:
        assert "alert-error" in r.get_data(as_text=True)
