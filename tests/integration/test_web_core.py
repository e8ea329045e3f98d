"""The secure web core against a real gunicorn with 2 workers on loopback."""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from datetime import datetime, timedelta, timezone

from integration.conftest import ADMIN, ANALYST
from support import WebClient


def audit_events(server) -> list[dict]:
    return [json.loads(line) for line in server.instance.paths.audit_log.read_text().splitlines()]


def unique_ip() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def test_login_page_and_root_redirect(live):
    c = WebClient(live.url, unique_ip())
    r = c.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    r = c.get("/login")
    assert r.status_code == 200
    assert "Ingresar" in r.text and 'name="csrf_token"' in r.text
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"


def test_login_logout_and_cookie_flags(live):
    c = WebClient(live.url, unique_ip())
    r = c.login(*ANALYST)
    assert r.status_code == 302
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # not configured for HTTPS in this server
    assert c.get("/cuenta").status_code == 200
    logged_in_cookie = c.cookies.get("emtp_session")
    r = c.post("/logout", data={"csrf_token": c.token()})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert c.get("/cuenta").status_code == 302
    # replaying the old cookie does not work: the server-side session was revoked
    replay = WebClient(live.url, unique_ip())
    replay.cookies.set("emtp_session", logged_in_cookie)
    assert replay.get("/cuenta").status_code == 302
    events = [e["event"] for e in audit_events(live) if e["actor"] == ANALYST[0]]
    assert "login" in events and "logout" in events


def test_unknown_user_and_wrong_password_same_message(live):
    c = WebClient(live.url, unique_ip())
    r1 = c.login("no-existe-" + uuid.uuid4().hex[:6], "Cualquier-clave-1")
    r2 = WebClient(live.url, unique_ip()).login(ANALYST[0], "Clave-equivocada-9")
    assert r1.status_code == r2.status_code == 401
    msg = "Usuario o contraseña incorrectos."
    assert msg in r1.text and msg in r2.text
    fails = [e for e in audit_events(live) if e["event"] == "login" and not e["success"]]
    reasons = {e["detail"]["reason"] for e in fails}
    assert {"unknown_user", "bad_password"} <= reasons


def test_session_rotated_on_login(live):
    c = WebClient(live.url, unique_ip())
    c.get("/login")
    before = c.cookies.get("emtp_session")
    token_before = c.csrf("/login")
    r = c.post("/login", data={"username": ANALYST[0], "password": ANALYST[1], "csrf_token": token_before})
    assert r.status_code == 302
    after = c.cookies.get("emtp_session")
    assert before and after and before != after
    assert c.token() != token_before  # the CSRF token is rotated too
    # the pre-login cookie is anonymous and stays so
    old = WebClient(live.url, unique_ip())
    old.cookies.set("emtp_session", before)
    assert old.get("/cuenta").status_code == 302


def test_csrf_rejected(live):
    c = WebClient(live.url, unique_ip())
    c.get("/login")
    r = c.post("/login", data={"username": ADMIN[0], "password": ADMIN[1]})
    assert r.status_code == 400 and "CSRF" in r.text
    r = c.post("/login", data={"username": ADMIN[0], "password": ADMIN[1], "csrf_token": "falso"})
    assert r.status_code == 400
    assert c.login(*ADMIN).status_code == 302
    name = "csrf" + uuid.uuid4().hex[:6]
    form = {"username": name, "password": "Clave-segura-1", "confirm": "Clave-segura-1", "role": "analista"}
    r = c.post("/admin/usuarios/nuevo", data=form, headers={"HX-Request": "true"})
    assert r.status_code == 400
    r = c.post("/admin/usuarios/nuevo", data=form, headers={"HX-Request": "true", "X-CSRF-Token": "otro"})
    assert r.status_code == 400
    users = c.get(f"/admin/usuarios/?estado=todos&q={name}").text
    assert f"<strong>{name}</strong>" not in users  # nothing was written
    assert "No hay usuarios que coincidan" in users


def test_idle_session_expires(live):
    c = WebClient(live.url, unique_ip())
    assert c.login(*ANALYST).status_code == 302
    assert c.get("/cuenta").status_code == 200
    # age every session of the analyst beyond the 30-minute idle limit, in the real database file
    con = sqlite3.connect(live.instance.paths.users_db, timeout=10)
    old = (datetime.now(timezone.utc) - timedelta(minutes=31)).replace(tzinfo=None)
    with con:
        con.execute("UPDATE user_sessions SET last_seen = ? WHERE user_id = "
                    "(SELECT id FROM users WHERE username = ?)", (old.isoformat(sep=" "), ANALYST[0]))
    con.close()
    r = c.get("/cuenta")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    r = c.get(r.headers["Location"])
    assert "Su sesión expiró por inactividad" in r.text


def test_lockout_by_username_is_shared_across_workers(live):
    name = "bloq" + uuid.uuid4().hex[:6]
    inst = live.instance
    from visualizador_emtp.users import service
    service.create_user(inst.db, name, "Clave-correcta-1", "analista", bcrypt_rounds=4)
    pids = set()
    for i in range(5):  # a fresh connection each time: requests spread over both workers
        r = WebClient(live.url, unique_ip()).login(name, f"mala-clave-{i}")
        assert r.status_code == 401
    r = WebClient(live.url, unique_ip()).login(name, "Clave-correcta-1")
    assert r.status_code == 429
    assert "Demasiados intentos fallidos" in r.text
    events = audit_events(live)
    assert any(e["event"] == "lockout" and e["target"] == name for e in events)
    # the app.log shows both workers served requests over the test run (lockout is not per-process memory)
    for line in inst.paths.app_log.read_text().splitlines():
        if "Booting worker with pid" in line:
            pids.add(line.rsplit(" ", 1)[-1])
    assert len(pids) >= 2


def test_lockout_by_ip(live):
    ip = unique_ip()
    for i in range(5):
        r = WebClient(live.url, ip).login(f"nadie{i}-{uuid.uuid4().hex[:4]}", "clave-mala-123")
        assert r.status_code == 401
    r = WebClient(live.url, ip).login(*ANALYST)  # right password, locked IP
    assert r.status_code == 429
    assert WebClient(live.url, unique_ip()).login(*ANALYST).status_code == 302  # other IPs unaffected


def test_user_lifecycle_through_htmx(live):
    admin = WebClient(live.url, unique_ip())
    assert admin.login(*ADMIN).status_code == 302
    tok = admin.token()
    hx = {"HX-Request": "true", "X-CSRF-Token": tok}
    name = "nuevo" + uuid.uuid4().hex[:6]
    r = admin.post("/admin/usuarios/nuevo", headers=hx, data={
        "username": name, "full_name": "Nueva Persona", "email": "nueva@mineduc.cl", "role": "analista",
        "password": "Clave-nueva-123", "confirm": "Clave-nueva-123"})
    assert r.status_code == 200 and f"Usuario &#39;{name}&#39; creado." in r.text
    # the new user logs in
    user = WebClient(live.url, unique_ip())
    assert user.login(name, "Clave-nueva-123").status_code == 302
    assert user.get("/cuenta").status_code == 200
    uid = int(re.search(rf'id="usuario-(\d+)">\s*<td><strong>{name}</strong>', r.text).group(1))
    # edit: new name and a new password
    r = admin.post(f"/admin/usuarios/{uid}/editar", headers=hx, data={
        "role": "analista", "full_name": "Nombre Editado", "email": "nueva@mineduc.cl",
        "password": "Otra-clave-456", "confirm": "Otra-clave-456"})
    assert r.status_code == 200 and "Nombre Editado" in r.text
    assert user.get("/cuenta").status_code == 302  # an admin password reset ends the user's sessions
    assert WebClient(live.url, unique_ip()).login(name, "Clave-nueva-123").status_code == 401
    assert user.login(name, "Otra-clave-456").status_code == 302
    # deactivate: the session ends at once and login is refused
    r = admin.post(f"/admin/usuarios/{uid}/desactivar", headers=hx)
    assert r.status_code == 200 and "desactivado" in r.text
    assert user.get("/cuenta").status_code == 302
    assert WebClient(live.url, unique_ip()).login(name, "Otra-clave-456").status_code == 401
    r = admin.post(f"/admin/usuarios/{uid}/activar", headers=hx)
    assert r.status_code == 200 and "reactivado" in r.text
    assert WebClient(live.url, unique_ip()).login(name, "Otra-clave-456").status_code == 302
    events = [(e["event"], e["target"]) for e in audit_events(live)]
    for ev in ("user_create", "user_update", "user_password_change", "user_deactivate", "user_activate"):
        assert (ev, name) in events, ev
    inactive_view = admin.get("/admin/usuarios/?vista=sin_acceso").text
    assert name not in inactive_view  # just logged in


def test_last_admin_cannot_demote_or_deactivate_self(live):
    admin = WebClient(live.url, unique_ip())
    assert admin.login(*ADMIN).status_code == 302
    hx = {"HX-Request": "true", "X-CSRF-Token": admin.token()}
    from visualizador_emtp.users import service
    me = service.get_user(live.instance.db, ADMIN[0])
    others = [u for u in service.list_users(live.instance.db, role="admin", active=True) if u.id != me.id]
    for u in others:  # make the fixture admin the only active admin
        service.set_active(live.instance.db, u.id, False)
    r = admin.post(f"/admin/usuarios/{me.id}/desactivar", headers=hx)
    assert r.status_code == 409 and "último administrador activo" in r.text
    r = admin.post(f"/admin/usuarios/{me.id}/editar", headers=hx, data={"role": "analista"})
    assert r.status_code == 422 and "último administrador activo" in r.text
    assert service.get_user(live.instance.db, ADMIN[0]).role == "admin"
    for u in others:
        service.set_active(live.instance.db, u.id, True)


def test_healthz(live):
    r = WebClient(live.url).get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["database"]["at_head"] is True
    assert "secret" not in r.text.lower() and "password" not in r.text.lower()


def test_app_log_format(live):
    text = live.instance.paths.app_log.read_text()
    assert "[pid " in text and " INFO " in text


def test_audit_chain_of_a_live_instance_verifies_and_catches_edits(live):
    """Everything the server wrote above forms an intact chain; an edit, a deletion, a truncation are caught."""
    import os
    import subprocess

    from support import EMTP_ADMIN

    for i in range(25):  # some traffic of its own, so the test does not depend on the others
        WebClient(live.url, unique_ip()).login(f"visitante{i % 3}", "clave-equivocada")
    home = live.instance.home
    env = {**os.environ, "EMTP_HOME": str(home)}
    verify = lambda: subprocess.run([EMTP_ADMIN, "audit", "verify"], env=env, capture_output=True, text=True)
    r = verify()
    assert r.returncode == 0, r.stdout + r.stderr
    log = live.instance.paths.audit_log
    pristine = log.read_bytes()
    head = (live.instance.paths.run_dir / "audit.head").read_bytes()
    lines = pristine.decode().splitlines(keepends=True)
    assert len(lines) > 20
    try:
        tampered = lines[:]
        record = json.loads(tampered[5])
        record["ip"] = "1.2.3.4"  # edited, hash left as it was
        tampered[5] = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        log.write_text("".join(tampered))
        r = verify()
        assert r.returncode == 2 and "modific" in (r.stdout + r.stderr)
        log.write_text("".join(lines[:7] + lines[8:]))  # one line deleted
        r = verify()
        assert r.returncode == 2 and "cadena" in (r.stdout + r.stderr)
        log.write_text("".join(lines[:-3]))  # the tail truncated
        r = verify()
        assert r.returncode == 2 and "truncado" in (r.stdout + r.stderr)
    finally:
        log.write_bytes(pristine)
        (live.instance.paths.run_dir / "audit.head").write_bytes(head)
    assert verify().returncode == 0
