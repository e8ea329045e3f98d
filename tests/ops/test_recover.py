"""emtp-admin db recover: damaged users.db → the intact rows come back, the damaged file is kept."""

from __future__ import annotations

import hashlib
import json

from ops_helpers import all_rows, checkpoint, overwrite_page, rowids_on_page, table_leaf_pages


def _fill(make_user, n=150):
    for i in range(n):
        make_user(f"usuario{i:03d}", full_name=f"Persona {i}", email=f"p{i}@mineduc.cl")


def test_recover_overwritten_page_brings_back_intact_rows(home, instance, make_user, run_cli):
    _fill(make_user)
    instance.db.dispose()
    db = instance.paths.users_db
    checkpoint(db)
    original = all_rows(db, "users")
    leaves = table_leaf_pages(db, "users")
    assert len(leaves) >= 4
    victim = leaves[len(leaves) // 2]
    lost = set(rowids_on_page(db, victim))
    assert lost
    overwrite_page(db, victim)
    damaged_sha = hashlib.sha256(db.read_bytes()).hexdigest()
    assert run_cli("db", "check").returncode == 2

    r = run_cli("db", "recover", "--yes")
    assert r.returncode == 0, r.stderr
    assert "Base recuperada" in r.stdout and "integrity_check de la base recuperada: ok" in r.stdout
    recovered = all_rows(db, "users")
    # every row outside the damaged page is back, identical; nothing invented
    assert set(recovered) == set(original) - lost
    assert all(recovered[k] == original[k] for k in recovered)
    assert f" {len(recovered)} " in r.stdout.replace("\n", " ")
    # the damaged file is kept aside, byte for byte
    kept = list(instance.paths.data_dir.glob("users.db.damaged-*"))
    kept = [k for k in kept if not k.name.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and hashlib.sha256(kept[0].read_bytes()).hexdigest() == damaged_sha
    assert run_cli("db", "check").returncode == 0
    # the app can log users in again (the lower(username) index was rebuilt)
    last = json.loads(instance.paths.audit_log.read_text().splitlines()[-1])
    assert last["event"] == "db_recover" and last["success"] is True
    assert "Recuperación de users.db" in instance.paths.maintenance_log.read_text()


def test_recover_truncated_file(home, instance, make_user, run_cli):
    _fill(make_user)
    instance.db.dispose()
    db = instance.paths.users_db
    checkpoint(db)
    original = all_rows(db, "users")
    leaves = table_leaf_pages(db, "users")
    page_size = 4096
    keep_pages = leaves[2]  # cut the file inside the users table
    survivors = set()
    for p in leaves:
        if p < keep_pages:
            survivors |= set(rowids_on_page(db, p))
    with open(db, "r+b") as f:
        f.truncate(page_size * (keep_pages - 1))
    r = run_cli("doctor")
    assert r.returncode == 2 and "FAIL integridad_users_db" in r.stdout
    r = run_cli("db", "recover", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    recovered = all_rows(db, "users")
    assert survivors <= set(recovered)
    assert all(recovered[k] == original[k] for k in recovered)


def test_recover_impossible_names_the_backup_to_restore(home, instance, make_user, run_cli):
    make_user("ana")
    assert run_cli("backup").returncode == 0
    name = sorted(p.name for p in instance.settings.home_path("backup.dest").iterdir() if p.name.startswith("emtp_"))[-1]
    instance.db.dispose()
    db = instance.paths.users_db
    checkpoint(db)
    db.write_bytes(b"\x13" * 16384)  # nothing left to recover
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    r = run_cli("db", "recover", "--yes")
    assert r.returncode == 2
    assert f"emtp-admin restore {name} --yes" in r.stderr and "Traceback" not in r.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    # and the suggested command works
    r = run_cli("restore", name, "--yes")
    assert r.returncode == 0, r.stderr
    assert run_cli("db", "check").returncode == 0


def test_recover_healthy_database_changes_nothing(home, instance, run_cli):
    before = instance.paths.users_db.stat().st_mtime_ns
    r = run_cli("db", "recover", "--yes")
    assert r.returncode == 0 and "no hay nada que recuperar" in r.stdout
    assert instance.paths.users_db.stat().st_mtime_ns == before
    assert not list(instance.paths.data_dir.glob("users.db.damaged-*"))
