"""emtp-admin users … through the real console script."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone


def audit_lines(home):
    return [json.loads(x) for x in (home / "logs" / "audit.jsonl").read_text().splitlines()]


def test_create_list_and_duplicates(run_cli, home):
    r = run_cli("users", "create", "--role", "admin", "--full-name", "Jefa", "jefa", "--password-stdin",
                input="Clave-segura-1\n")
    assert r.returncode == 0 and "Usuario 'jefa' creado con perfil admin." in r.stdout
    r = run_cli("users", "create", "JEFA", "--password-stdin", input="Clave-segura-1\n")
    assert r.returncode == 1 and "Ya existe un usuario" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("users", "list")
    assert "jefa" in r.stdout and "admin" in r.stdout and "nunca" in r.stdout
    assert ("user_create", "jefa") in [(e["event"], e["target"]) for e in audit_lines(home)]


def test_password_never_from_argument_and_needs_tty(run_cli):
    r = run_cli("users", "create", "ana")  # stdin is not a terminal and --password-stdin not given
    assert r.returncode == 1 and "--password-stdin" in r.stderr
    r = run_cli("users", "create", "ana", "--password", "x")
    assert r.returncode == 2  # no such option


def test_bad_passwords(run_cli):
    r = run_cli("users", "create", "ana", "--password-stdin", input="corta\n")
    assert r.returncode == 1 and "al menos 8 caracteres" in r.stderr
    r = run_cli("users", "create", "ana", "--password-stdin", input="ñ" * 40 + "\n")
    assert r.returncode == 1 and "72 bytes" in r.stderr
    r = run_cli("users", "create", "ana", "--password-stdin", input="")
    assert r.returncode == 1 and "No se recibió contraseña" in r.stderr


def test_set_password_deactivate_activate(run_cli, home, make_user):
    make_user("jefa", role="admin")
    make_user("luis")
    r = run_cli("users", "set-password", "luis", "--password-stdin", input="Nueva-clave-99\n")
    assert r.returncode == 0 and "actualizada" in r.stdout
    r = run_cli("users", "deactivate", "luis")
    assert r.returncode == 0 and "desactivado" in r.stdout
    r = run_cli("users", "deactivate", "luis")
    assert r.returncode == 0 and "ya estaba" in r.stdout
    r = run_cli("users", "list")
    assert "luis" not in r.stdout
    assert "luis" in run_cli("users", "list", "--all").stdout
    assert run_cli("users", "activate", "luis").returncode == 0
    r = run_cli("users", "deactivate", "jefa")
    assert r.returncode == 1 and "último administrador activo" in r.stderr
    r = run_cli("users", "deactivate", "nadie")
    assert r.returncode == 1 and "No existe el usuario 'nadie'" in r.stderr
    events = [(e["event"], e["target"]) for e in audit_lines(home)]
    assert ("user_password_change", "luis") in events and ("user_deactivate", "luis") in events
    assert ("user_activate", "luis") in events


def test_inactive_review(run_cli, home, make_user):
    make_user("jefa", role="admin")
    make_user("activa")
    make_user("dormida")
    make_user("nueva")
    con = sqlite3.connect(home / "data" / "users.db")
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with con:
        con.execute("UPDATE users SET last_login = ? WHERE username = 'activa'", ((now - timedelta(days=2)).isoformat(" "),))
        con.execute("UPDATE users SET last_login = ? WHERE username = 'dormida'", ((now - timedelta(days=45)).isoformat(" "),))
        con.execute("UPDATE users SET last_login = ? WHERE username = 'jefa'", ((now - timedelta(days=1)).isoformat(" "),))
    con.close()
    r = run_cli("users", "inactive", "--days", "30")
    assert r.returncode == 0
    assert "dormida" in r.stdout and "activa " not in r.stdout and "nueva" not in r.stdout
    r = run_cli("users", "inactive", "--days", "30", "--deactivate")
    assert "Desactivados: 1." in r.stdout
    assert "dormida" not in run_cli("users", "list").stdout
    r = run_cli("users", "inactive", "--days", "0")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_commands_without_instance_give_one_line(tmp_path, run_cli):
    bad = tmp_path / "sin-instancia"
    (bad / "config").mkdir(parents=True)
    (bad / "config" / "visualizador-emtp.toml").write_text("[server]\nworkers = -1\n")
    r = run_cli("users", "list", env={"EMTP_HOME": str(bad)})
    assert r.returncode == 2 and "server.workers" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_prune_drops_expired_sessions_and_old_attempts(instance, make_user):
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import func, select

    from visualizador_emtp.auth.login import LockoutPolicy, authenticate, prune
    from visualizador_emtp.auth.models import LoginAttempt, UserSession

    make_user("ana", password="Clave-segura-1")
    for _ in range(2):
        assert authenticate(instance.db, "ana", "Clave-segura-1", "1.1.1.1", "ua", LockoutPolicy(), 4).ok
    with instance.db.session() as s:
        old = datetime.now(timezone.utc) - timedelta(days=40)
        first = s.scalars(select(UserSession)).first()
        first.last_seen = old
        s.add(LoginAttempt(username="ana", ip="1.1.1.1", success=False, ts=old))
    prune(instance.db, idle_minutes=30)
    with instance.db.session() as s:
        assert s.scalar(select(func.count()).select_from(UserSession)) == 1
        assert s.scalar(select(func.count()).select_from(LoginAttempt)) == 2
