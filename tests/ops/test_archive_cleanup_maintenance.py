"""emtp-admin archive, cleanup and maintenance log."""

from __future__ import annotations

import gzip
import os
import pwd
import re
import sqlite3
import subprocess
import tarfile
import time
from datetime import datetime

import pytest

from support import EMTP_ADMIN
from visualizador_emtp.ops.archive import apply_archive_retention, archive_name, list_archives


def test_archive_holds_a_consistent_snapshot_and_logs(home, instance, make_user, run_cli, dest, tmp_path):
    make_user("ana")
    make_user("beto")
    instance.paths.app_log.write_text("2025-01-01 00:00:00,000 INFO [pid 1] x: hola\n")
    r = run_cli("archive")
    assert r.returncode == 0, r.stderr
    name = archive_name(datetime.now())
    path = dest / name
    assert path.exists() and re.fullmatch(r"backup_emtp_\d{6}\.tar\.gz", name)
    with tarfile.open(path) as tar:
        names = tar.getnames()
        assert "data/users.db" in names and "logs/app.log" in names and "logs/audit.jsonl" in names
        assert not [n for n in names if n.endswith(("-wal", "-shm", ".lock"))]
        tar.extract("data/users.db", tmp_path, filter="data")
    con = sqlite3.connect(tmp_path / "data" / "users.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert sorted(r[0] for r in con.execute("SELECT username FROM users")) == ["ana", "beto"]
    con.close()
    assert "Archivo mensual backup_emtp_" in instance.paths.maintenance_log.read_text()
    listed = run_cli("backup", "list")
    assert name in listed.stdout


def test_archive_retention_twelve_months(dest):
    dest.mkdir(parents=True, exist_ok=True)
    for ym in ("202401", "202412", "202501", "202506", "202512"):
        (dest / f"backup_emtp_{ym}.tar.gz").write_bytes(b"x" * 10)
    removed = apply_archive_retention(dest, 12, now=datetime(2025, 12, 15))
    assert sorted(n for n, _ in removed) == ["backup_emtp_202401.tar.gz", "backup_emtp_202412.tar.gz"]
    assert [p.name for p in list_archives(dest)] == ["backup_emtp_202501.tar.gz", "backup_emtp_202506.tar.gz",
                                                     "backup_emtp_202512.tar.gz"]


@pytest.mark.slow
def test_archive_killed_leaves_no_archive_and_keeps_the_previous(home, run_cli, dest):
    assert run_cli("archive").returncode == 0
    name = archive_name(datetime.now())
    before = (dest / name).read_bytes()
    for phase in ("archive_snapshot", "archive_written"):
        r = run_cli("archive", env={"EMTP_TEST_CRASH_AT": phase})
        assert r.returncode == -9
        assert (dest / name).read_bytes() == before  # untouched, still the complete one
        assert [p.name for p in list_archives(dest)] == [name]
    assert run_cli("archive").returncode == 0
    assert not [p for p in dest.iterdir() if p.name.startswith((".tmp-", ".archive-"))]


def _age(path, days):
    t = time.time() - days * 86400
    os.utime(path, (t, t))


def test_cleanup_dry_run_then_real(home, instance, run_cli):
    logs = instance.paths.logs_dir
    # a real audit chain across rotated files, like logrotate leaves it
    for i in range(30):
        instance.audit.append("user_create", actor="ana", target=f"a{i}", detail={"pad": "x" * 200})
    os.rename(logs / "audit.jsonl", logs / "audit.jsonl.2")
    for i in range(5):
        instance.audit.append("user_create", actor="ana", target=f"b{i}")
    os.rename(logs / "audit.jsonl", logs / "audit.jsonl.1")
    instance.audit.append("user_create", actor="ana", target="c0")
    assert instance.audit.verify().ok
    old_log = logs / "app.log.5.gz"
    old_log.write_bytes(os.urandom(300_000))
    _age(old_log, 120)
    recent_log = logs / "app.log.2.gz"
    recent_log.write_bytes(b"y" * 1000)
    _age(recent_log, 10)
    old_live = instance.paths.app_log
    _age(old_live, 200)  # live logs are never deleted, however old

    r = run_cli("cleanup", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "Se haría: borrar log rotado antiguo" in r.stdout and "app.log.5.gz (293,0 KB)" in r.stdout
    assert "comprimir auditoría rotada" in r.stdout and "audit.jsonl.2" in r.stdout
    assert "audit.jsonl.1 " not in r.stdout and "app.log.2.gz" not in r.stdout
    assert "Se liberarían aprox." in r.stdout
    assert old_log.exists() and (logs / "audit.jsonl.2").exists()  # nothing touched

    r = run_cli("cleanup")
    assert r.returncode == 0, r.stderr
    assert not old_log.exists() and recent_log.exists() and old_live.exists()
    assert not (logs / "audit.jsonl.2").exists() and (logs / "audit.jsonl.2.gz").exists()
    assert (logs / "audit.jsonl.1").exists()  # logrotate's delaycompress keeps .1 plain
    with gzip.open(logs / "audit.jsonl.2.gz", "rt") as f:
        assert len(f.readlines()) == 30
    assert instance.audit.verify().ok  # the chain still verifies through the .gz
    assert "Liberados" in r.stdout
    assert "Limpieza de disco" in instance.paths.maintenance_log.read_text()
    again = run_cli("cleanup")
    assert again.returncode == 0 and "No hay nada que limpiar" in again.stdout


def test_maintenance_log_and_show(home, instance, run_cli):
    r = run_cli("maintenance", "log", "Reset password usuario \"analista01\"", "--operator", "Juan Pérez")
    assert r.returncode == 0, r.stderr
    line = instance.paths.maintenance_log.read_text().splitlines()[-1]
    assert re.fullmatch(r"\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}\] - Reset password usuario \"analista01\" - TI: Juan Pérez", line)
    r = run_cli("maintenance", "log", "Backup mensual revisado", env={"SUDO_USER": "maria", "USER": "root"})
    assert instance.paths.maintenance_log.read_text().splitlines()[-1].endswith("- TI: maria")
    # cron and timers may set none of SUDO_USER, USER, LOGNAME: the process's own account is named
    bare = {k: v for k, v in os.environ.items() if k not in ("SUDO_USER", "USER", "LOGNAME")}
    r = subprocess.run([EMTP_ADMIN, "maintenance", "log", "Tarea programada"], capture_output=True, text=True,
                       env={**bare, "EMTP_HOME": str(home)})
    assert r.returncode == 0, r.stderr
    account = pwd.getpwuid(os.geteuid()).pw_name
    assert instance.paths.maintenance_log.read_text().splitlines()[-1].endswith(f"- TI: {account}")
    assert run_cli("maintenance", "log", "   ").returncode == 1
    for i in range(5):
        run_cli("maintenance", "log", f"tarea {i}", "--operator", "ti")
    shown = run_cli("maintenance", "show", "--lines", "2")
    assert shown.returncode == 0 and shown.stdout.splitlines() == \
        instance.paths.maintenance_log.read_text().splitlines()[-2:]


def test_users_inactive_deactivate(home, instance, make_user, run_cli):
    from datetime import timedelta, timezone

    from visualizador_emtp.users.models import User

    make_user("activo")
    make_user("dormido")
    with instance.db.session() as s:
        for u in s.query(User):
            u.last_login = datetime.now(timezone.utc) - timedelta(days=2 if u.username == "activo" else 60)
    r = run_cli("users", "inactive", "--days", "30")
    assert r.returncode == 0 and "dormido" in r.stdout and "activo " not in r.stdout
    r = run_cli("users", "inactive", "--days", "30", "--deactivate")
    assert r.returncode == 0 and "Desactivados: 1" in r.stdout
    instance.db.dispose()
    with instance.db.session() as s:
        assert {u.username: u.is_active for u in s.query(User)} == {"activo": True, "dormido": False}
