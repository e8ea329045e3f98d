"""emtp-admin restore: state equals the backup, corrupted backups refused untouched, migrations."""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path

from visualizador_emtp import migrate
from visualizador_emtp.ops.backup import create_backup, list_backups
from visualizador_emtp.users import service


def _users(db: Path) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT id, username, role, is_active, password_hash FROM users ORDER BY id").fetchall()
    finally:
        con.close()


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_backup_change_restore_equals_backup(home, instance, run_cli, make_user, dest):
    make_user("ana", role="admin")
    make_user("beto")
    instance.audit.append("login", actor="ana", target="ana", success=True)
    assert run_cli("backup").returncode == 0
    b = list_backups(dest)[-1]
    users_at_backup = _users(instance.paths.users_db)
    audit_at_backup = (b.path / "audit.jsonl").read_text()

    # change everything after the backup
    make_user("carla")
    beto = service.get_user(instance.db, "beto")
    service.set_active(instance.db, beto.id, False)
    instance.audit.append("user_create", actor="ana", target="carla")
    instance.db.dispose()
    assert _users(instance.paths.users_db) != users_at_backup

    r = run_cli("restore", b.name, "--yes")
    assert r.returncode == 0, r.stderr
    assert _users(instance.paths.users_db) == users_at_backup
    restored_audit = instance.paths.audit_log.read_text()
    assert restored_audit.startswith(audit_at_backup)
    tail = [json.loads(x) for x in restored_audit[len(audit_at_backup):].splitlines()]
    assert [t["event"] for t in tail] == ["restore"] and tail[0]["success"] is True
    assert instance.audit.verify().ok
    # the previous files were kept aside, so the restore can be undone
    aside = [f for f in instance.paths.data_dir.glob("users.db.pre-restore-*") if not f.name.endswith(("-wal", "-shm"))]
    # (its WAL, if any, moved with it under the matching name, so the newest rows are there)
    assert len(aside) == 1 and "carla" in [u[1] for u in _users(aside[0])]
    assert list(instance.paths.logs_dir.glob("audit.jsonl.pre-restore-*"))
    assert "Restauración desde " + b.name in instance.paths.maintenance_log.read_text()


def test_restore_refuses_corrupted_backup_and_touches_nothing(home, instance, run_cli, make_user, dest):
    make_user("ana")
    assert run_cli("backup").returncode == 0
    b = list_backups(dest)[-1]
    make_user("beto")
    instance.db.dispose()
    before_db, before_audit = _sha(instance.paths.users_db), _sha(instance.paths.audit_log)

    snap = b.path / "users.db"
    data = bytearray(snap.read_bytes())
    data[5000] ^= 0xFF  # one flipped bit in the middle of a page
    snap.write_bytes(bytes(data))
    r = run_cli("restore", b.name, "--yes")
    assert r.returncode == 2
    assert "sha256" in r.stderr and "No se modificó nada" in r.stderr and "Traceback" not in r.stderr
    assert _sha(instance.paths.users_db) == before_db
    assert not list(instance.paths.data_dir.glob("*.pre-restore-*"))
    # the refusal is audited
    last = json.loads(instance.paths.audit_log.read_text().splitlines()[-1])
    assert last["event"] == "restore" and last["success"] is False
    assert _sha(instance.paths.audit_log) != before_audit  # only that one line was added

    # a missing manifest and an unknown name are refused too
    (b.path / "MANIFEST.json").unlink()
    assert run_cli("restore", b.name, "--yes").returncode == 2
    r = run_cli("restore", "emtp_19990101-000000", "--yes")
    assert r.returncode == 2 and "No existe el respaldo" in r.stderr
    assert _sha(instance.paths.users_db) == before_db


def test_restore_needs_confirmation(home, run_cli, dest):
    assert run_cli("backup").returncode == 0
    r = run_cli("restore", "latest")
    assert r.returncode == 1 and "--yes" in r.stderr


def test_restore_of_older_revision_runs_migrations(home, instance, run_cli, dest):
    head = migrate.head_revision()
    migrate.downgrade(instance.db.engine, instance.settings.database_url, "base")
    instance.db.dispose()
    info = create_backup(instance, dest).info
    assert info.manifest["database"]["revision"] is None
    migrate.upgrade(instance.db.engine, instance.settings.database_url)
    instance.db.dispose()
    r = run_cli("restore", info.name, "--yes")
    assert r.returncode == 0, r.stderr
    assert "migraciones" in r.stdout
    assert migrate.current_revision(instance.db.engine) == head


# ---------------------------------------------------------------- restore across audit rotations

REPO = Path(__file__).resolve().parents[2]


def _logrotate(instance, tmp_path: Path) -> None:
    """Force one rotation with the project's own logrotate/ policy (real logrotate), pointed at
    this instance's logs and without the production owner."""
    policy = (REPO / "logrotate" / "visualizador-emtp").read_text()
    policy = policy.replace("/opt/apps/visualizador-emtp/logs", str(instance.paths.logs_dir))
    policy = policy.replace("create 0640 emtp emtp", "create 0640").replace("    su emtp emtp\n", "")
    conf = tmp_path / "logrotate.conf"
    conf.write_text(policy)
    conf.chmod(0o644)
    r = subprocess.run(["logrotate", "-f", "-s", str(tmp_path / "logrotate.state"), str(conf)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _events(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["target"] for line in f]


def test_restore_across_rotations_sets_newer_rotated_files_aside(home, instance, run_cli, make_user, dest, tmp_path):
    logs = instance.paths.logs_dir
    make_user("ana", role="admin")
    for name in ("a1", "a2"):
        instance.audit.append("login", actor=name, target=name)
    _logrotate(instance, tmp_path)  # audit.jsonl.1 = a…
    for name in ("b1", "b2"):
        instance.audit.append("login", actor=name, target=name)
    assert run_cli("backup").returncode == 0
    b = list_backups(dest)[-1]
    instance.audit.append("login", actor="c1", target="c1")
    _logrotate(instance, tmp_path)  # audit.jsonl.2.gz = a…, audit.jsonl.1 = b… + backup + c1
    instance.audit.append("login", actor="d1", target="d1")
    assert (logs / "audit.jsonl.2.gz").exists() and "c1" in _events(logs / "audit.jsonl.1")
    assert instance.audit.verify().ok

    r = run_cli("restore", b.name, "--yes")
    assert r.returncode == 0, r.stderr
    # audit.jsonl.1 (written after the backup) went aside with audit.jsonl; a… stays, it precedes the backup
    aside = list(logs.glob("audit.jsonl.1.pre-restore-*"))
    assert len(aside) == 1 and "c1" in _events(aside[0])
    assert str(aside[0]) in r.stdout
    assert not (logs / "audit.jsonl.1").exists()
    assert "a2" in _events(logs / "audit.jsonl.2.gz")
    assert "b2" in _events(logs / "audit.jsonl") and "c1" not in _events(logs / "audit.jsonl")
    result = instance.audit.verify()
    assert result.ok, result.problems
    assert result.files == ["audit.jsonl.2.gz", "audit.jsonl"]
    v = run_cli("audit", "verify")
    assert v.returncode == 0, v.stdout + v.stderr
    # the log keeps rotating and chaining normally afterwards
    _logrotate(instance, tmp_path)
    instance.audit.append("login", actor="e1", target="e1")
    assert instance.audit.verify().ok


def test_restore_of_a_backup_older_than_every_rotation(home, instance, run_cli, make_user, dest, tmp_path):
    logs = instance.paths.logs_dir
    make_user("ana", role="admin")
    instance.audit.append("login", actor="a1", target="a1")
    assert run_cli("backup").returncode == 0
    b = list_backups(dest)[-1]
    instance.audit.append("login", actor="b1", target="b1")
    _logrotate(instance, tmp_path)
    instance.audit.append("login", actor="c1", target="c1")
    r = run_cli("restore", b.name, "--yes")
    assert r.returncode == 0, r.stderr
    assert not (logs / "audit.jsonl.1").exists() and list(logs.glob("audit.jsonl.1.pre-restore-*"))
    result = instance.audit.verify()
    assert result.ok and result.files == ["audit.jsonl"], result.problems


def test_restore_when_the_preceding_rotated_file_is_gone_warns_and_keeps_files(home, instance, run_cli,
                                                                             make_user, dest, tmp_path):
    logs = instance.paths.logs_dir
    make_user("ana", role="admin")
    instance.audit.append("login", actor="a1", target="a1")
    _logrotate(instance, tmp_path)
    instance.audit.append("login", actor="b1", target="b1")
    assert run_cli("backup").returncode == 0
    b = list_backups(dest)[-1]
    instance.audit.append("login", actor="c1", target="c1")
    _logrotate(instance, tmp_path)  # .2.gz = a1 (the backup's predecessor), .1 = b1…c1
    (logs / "audit.jsonl.2.gz").unlink()  # e.g. removed by hand
    r = run_cli("restore", b.name, "--yes")
    assert r.returncode == 0, r.stderr
    assert "No se encontró el archivo de auditoría rotado que precede al respaldo" in r.stdout + r.stderr
    assert (logs / "audit.jsonl.1").exists()  # nothing it cannot place was moved
