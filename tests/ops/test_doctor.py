"""emtp-admin doctor: every check seen passing and failing, against real files and a real server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from support import free_port, start_server
from visualizador_emtp import migrate
from visualizador_emtp.instance import Instance
from visualizador_emtp.ops import doctor as d
from visualizador_emtp.ops.backup import create_backup

from ops_helpers import checkpoint, overwrite_page, publish_tiny_data, table_leaf_pages


def test_exit_code_rules():
    ok, warn, fail = d.Check("a", d.OK, ""), d.Check("b", d.WARN, ""), d.Check("c", d.FAIL, "")
    assert d.exit_code([ok, ok]) == 0
    assert d.exit_code([ok, warn]) == 1
    assert d.exit_code([warn, fail, ok]) == 2
    assert d.as_json([ok, warn])["status"] == "WARN"


def test_disk(instance):
    assert d.check_disk(instance).status == d.OK
    c = d.check_disk(instance, min_free=1 << 60)
    assert c.status == d.WARN and "libres" in c.message


def test_app_log_errors(instance):
    log = instance.paths.app_log
    assert d.check_app_log_errors(instance).status == d.OK
    old = (datetime.now() - timedelta(hours=30)).strftime("%Y-%m-%d %H:%M:%S")
    recent = (datetime.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    with open(log, "a") as f:
        f.write(f"{old},001 ERROR [pid 1] x: viejo\n")
        f.write(f"{recent},001 INFO [pid 1] x: normal\n")
    assert d.check_app_log_errors(instance).status == d.OK  # older than 24 h
    with open(log, "a") as f:
        f.write(f"{recent},002 ERROR [pid 1] x: falla uno\n")
        f.write(f"{recent},003 CRITICAL [pid 1] x: falla dos\n")
    c = d.check_app_log_errors(instance)
    assert c.status == d.WARN and c.message.startswith("2 línea(s)") and "falla dos" in c.message


def test_app_log_size(instance):
    instance.paths.app_log.write_text("x" * 2000)
    assert d.check_app_log_size(instance).status == d.OK
    c = d.check_app_log_size(instance, max_bytes=1000)
    assert c.status == d.WARN and "2,0 KB" in c.message


def test_users_db_size_integrity_and_migrations(instance, make_user):
    for i in range(60):
        make_user(f"u{i:02d}")
    assert d.check_users_db_size(instance).status == d.OK
    assert d.check_users_db_size(instance, max_bytes=1024).status == d.WARN
    assert d.check_users_db_integrity(instance).status == d.OK
    assert d.check_migrations(instance).status == d.OK
    migrate.downgrade(instance.db.engine, instance.settings.database_url, "base")
    instance.db.dispose()
    c = d.check_migrations(instance)
    assert c.status == d.FAIL and "db upgrade" in c.message


def test_damaged_database_fails_doctor_naming_it(home, instance, make_user, run_cli):
    for i in range(120):
        make_user(f"u{i:03d}")
    instance.db.dispose()
    db = instance.paths.users_db
    checkpoint(db)
    overwrite_page(db, table_leaf_pages(db, "users")[1])
    c = d.check_users_db_integrity(instance)
    assert c.status == d.FAIL and str(db) in c.message and "db recover" in c.message
    r = run_cli("doctor")
    assert r.returncode == 2
    assert f"FAIL integridad_users_db  {db} dañada" in r.stdout
    # a truncated file is named as well
    with open(db, "r+b") as f:
        f.truncate(4096 * 3)
    r = run_cli("doctor", "--json")
    assert r.returncode == 2
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["integridad_users_db"]["status"] == "FAIL" and str(db) in checks["integridad_users_db"]["message"]
    # a missing users.db is reported, not created
    db.unlink()
    assert d.check_users_db_integrity(instance).status == d.FAIL
    assert d.check_migrations(instance).status == d.FAIL
    assert not db.exists()


def test_data_fresh_and_parquet(instance):
    assert d.check_data_fresh(instance).status == d.FAIL
    assert d.check_parquet(instance).status == d.FAIL
    vdir = publish_tiny_data(instance.paths.processed_dir, datetime.now(timezone.utc) - timedelta(days=10))
    c = d.check_data_fresh(instance)
    assert c.status == d.WARN and "10,0 días" in c.message
    assert d.check_parquet(instance).status == d.OK
    publish_tiny_data(instance.paths.processed_dir)
    assert d.check_data_fresh(instance).status == d.OK
    assert d.check_parquet(instance).status == d.OK
    # damage a parquet file of the published version
    current = instance.paths.processed_dir / "current"
    victim = next(current.resolve().glob("cube_anio.parquet"))
    victim.write_bytes(b"PAR1 not really parquet")
    from visualizador_emtp.data.cube import clear_cache
    clear_cache()
    c = d.check_parquet(instance)
    assert c.status == d.FAIL and "cube_anio" in c.message
    assert vdir.exists()


def test_failed_logins(instance):
    assert d.check_failed_logins(instance).status == d.OK
    old = datetime.now(timezone.utc) - timedelta(days=9)
    for _ in range(8):
        instance.audit.append("login", actor="eva", target="eva", success=False, ts=old)
    for _ in range(5):
        instance.audit.append("login", actor="eva", target="eva", success=False)
    instance.audit.append("login", actor="eva", target="eva", success=True)
    assert d.check_failed_logins(instance).status == d.OK  # 5 in the window: not over 5
    instance.audit.append("login", actor="eva", target="eva", success=False)
    c = d.check_failed_logins(instance)
    assert c.status == d.WARN and "eva: 6" in c.message


def test_audit_chain(instance):
    for i in range(3):
        instance.audit.append("user_create", actor="ana", target=f"u{i}")
    assert d.check_audit_chain(instance).status == d.OK
    lines = instance.paths.audit_log.read_text().splitlines()
    lines[1] = lines[1].replace('"u1"', '"intruso"')
    instance.paths.audit_log.write_text("\n".join(lines) + "\n")
    c = d.check_audit_chain(instance)
    assert c.status == d.FAIL and "audit.jsonl:2" in c.message


def test_last_backup(instance, dest):
    c = d.check_last_backup(instance)
    assert c.status == d.WARN and "no hay respaldos" in c.message
    create_backup(instance, dest)
    assert d.check_last_backup(instance).status == d.OK
    later = datetime.now(timezone.utc) + timedelta(hours=30)
    assert d.check_last_backup(instance, now=later).status == d.WARN


def test_service_check_with_and_without_systemd(instance, tmp_path):
    c = d.check_service(instance, run_dir=tmp_path / "no-systemd")
    assert c.status == d.WARN and "systemd no está disponible" in c.message
    # a systemctl executable answering like systemd does (the host has no systemd running)
    run_dir = tmp_path / "run-systemd"
    run_dir.mkdir()
    state = tmp_path / "state"
    exe = tmp_path / "systemctl"
    exe.write_text(f"#!/bin/sh\n[ \"$1\" = is-active ] || exit 1\ncat {state}\n"
                   f"[ \"$(cat {state})\" = active ]\n")
    exe.chmod(0o755)
    state.write_text("active\n")
    assert d.check_service(instance, systemctl=str(exe), run_dir=run_dir).status == d.OK
    state.write_text("failed\n")
    c = d.check_service(instance, systemctl=str(exe), run_dir=run_dir)
    assert c.status == d.FAIL and "failed" in c.message


@pytest.mark.slow
def test_http_port_and_restore_refusal_against_a_live_server(home, run_cli, dest, make_user):
    make_user("ana", role="admin")
    server = start_server(home, workers=1)
    bind = server.url.removeprefix("http://")
    env = {"EMTP_SERVER_BIND": bind}
    inst = Instance.load(home, **{"server.bind": bind})
    try:
        assert d.check_login_page(inst).status == d.OK
        assert d.check_healthz(inst).status == d.OK
        c = d.check_port(inst)
        assert c.status == d.OK and "lo atiende la aplicación" in c.message
        svc = d.check_service(inst, run_dir=Path("/nonexistent"))
        assert svc.status == d.WARN and "atiende el puerto" in svc.message

        # the whole doctor with published data and a fresh backup: only the systemd WARN is left
        publish_tiny_data(inst.paths.processed_dir)
        assert run_cli("backup").returncode == 0
        r = run_cli("doctor", env=env)
        assert "OK   web_login" in r.stdout and "OK   healthz" in r.stdout and "OK   puerto" in r.stdout
        assert r.returncode == 1, r.stdout  # WARN servicio: no systemd in the test machine
        assert r.stdout.count("FAIL") == 1 and "0 FAIL" in r.stdout

        # restore refuses while the app holds the port, and touches nothing
        before = inst.paths.users_db.stat().st_mtime_ns
        rr = run_cli("restore", "latest", "--yes", env=env)
        assert rr.returncode == 3 and "en ejecución" in rr.stderr and "No se modificó nada" in rr.stderr
        assert not list(inst.paths.data_dir.glob("*.pre-restore-*"))
        assert inst.paths.users_db.stat().st_mtime_ns == before

        # /healthz answers 503 when the database is not at the expected revision
        migrate.downgrade(inst.db.engine, inst.settings.database_url, "base")
        inst.db.dispose()
        c = d.check_healthz(inst)
        assert c.status == d.FAIL and "503" in c.message
        migrate.upgrade(inst.db.engine, inst.settings.database_url)
        inst.db.dispose()
    finally:
        server.stop()
    c = d.check_login_page(inst)
    assert c.status == d.FAIL and "no responde" in c.message
    assert d.check_healthz(inst).status == d.FAIL
    c = d.check_port(inst)
    assert c.status == d.FAIL and "nadie escucha" in c.message


@pytest.mark.slow
def test_port_held_by_another_program(instance):
    port = free_port()
    inst = Instance.load(instance.home, **{"server.bind": f"0.0.0.0:{port}"})
    code = (f"import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('127.0.0.1',{port}))\ns.listen()\nprint('ok',flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, "otro-programa"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ok"
        c = d.check_port(inst)
        assert c.status == d.FAIL and "otro programa" in c.message and str(proc.pid) in c.message
        assert d.check_login_page(inst, timeout=1).status == d.FAIL
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and d.check_port(inst).status != d.FAIL:
        time.sleep(0.1)
    assert "nadie escucha" in d.check_port(inst).message
