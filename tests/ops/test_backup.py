"""emtp-admin backup: verified snapshots, consistency under concurrent writers, crash safety."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from visualizador_emtp.ops.backup import (MANIFEST, apply_retention, create_backup, list_backups,
                                          verify_backup)
from visualizador_emtp.fmt import human_size


def _events(home: Path, event: str) -> list[dict]:
    lines = (home / "logs" / "audit.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


def test_backup_cli_creates_verified_backup(home, run_cli, make_user, dest):
    make_user("ana", role="admin")
    make_user("beto")
    cfg = home / "config" / "visualizador-emtp.toml"
    cfg.write_text(cfg.read_text() + '\n[database]\nbusy_timeout_ms = 9000\n')
    r = run_cli("backup")
    assert r.returncode == 0, r.stderr
    assert "Respaldo creado" in r.stdout and "2 usuario(s)" in r.stdout
    backups = list_backups(dest)
    assert len(backups) == 1
    b = verify_backup(backups[0].path)
    assert b.manifest["database"]["tables"]["users"] == 2
    assert b.manifest["audit"]["chain_ok"] is True
    # a real SQLite snapshot, self-contained (no -wal beside it)
    assert not (b.path / "users.db-wal").exists()
    con = sqlite3.connect(b.path / "users.db")
    assert sorted(r[0] for r in con.execute("SELECT username FROM users")) == ["ana", "beto"]
    con.close()
    # no secrets without --include-secrets
    assert not (b.path / "config" / "secret_key").exists()
    assert (b.path / "config" / "visualizador-emtp.toml").exists()
    assert _events(home, "backup")[-1]["success"] is True
    assert "Respaldo emtp_" in (home / "logs" / "MANTENIMIENTO.log").read_text()
    listed = run_cli("backup", "list", "--verify")
    assert listed.returncode == 0 and b.name in listed.stdout and "verificado" in listed.stdout


def test_backup_include_secrets_and_redaction(home, run_cli, dest):
    secret = (home / "config" / "secret_key").read_bytes()
    r = run_cli("backup", "--include-secrets")
    assert r.returncode == 0, r.stderr
    b = list_backups(dest)[-1]
    copied = b.path / "config" / "secret_key"
    assert copied.read_bytes() == secret
    assert oct(copied.stat().st_mode & 0o777) == "0o600"
    from visualizador_emtp.ops.backup import _redact_config
    assert _redact_config('url = "postgresql+psycopg://emtp:S3cret@db:5432/x"') == \
        'url = "postgresql+psycopg://emtp:***@db:5432/x"'


def test_backup_to_bad_destination_fails_cleanly(home, run_cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = run_cli("backup", "--dest", str(blocker / "sub"))
    assert r.returncode == 1
    assert "Respaldo fallido" in r.stderr and "Traceback" not in r.stderr
    assert _events(home, "backup")[-1]["success"] is False


def test_backup_with_postgresql_says_pg_dump(home, run_cli, dest):
    r = run_cli("backup", env={"EMTP_DATABASE_URL": "postgresql+psycopg://u:p@127.0.0.1:1/emtp"})
    assert r.returncode == 0, r.stderr
    assert "pg_dump" in r.stdout
    b = list_backups(dest)[-1]
    assert not (b.path / "users.db").exists() and (b.path / "audit.jsonl").exists()
    assert "p@" not in (b.path / "config" / "visualizador-emtp.toml").read_text()


def test_retention_keeps_newest_and_drops_old(instance, dest):
    for _ in range(3):
        create_backup(instance, dest)
        time.sleep(1.05)
    backups = list_backups(dest)
    assert len(backups) == 3
    # age the two oldest (the manifest is not part of the checksummed files)
    for b in backups[:2]:
        m = json.loads((b.path / MANIFEST).read_text())
        m["created_at"] = (datetime.now(timezone.utc) - timedelta(days=40)).isoformat(timespec="seconds")
        (b.path / MANIFEST).write_text(json.dumps(m))
    removed = apply_retention(dest, 30)
    assert [n for n, _ in removed] == [b.name for b in backups[:2]]
    assert [b.name for b in list_backups(dest)] == [backups[2].name]
    # even when everything is old, the newest backup survives
    m = json.loads((backups[2].path / MANIFEST).read_text())
    m["created_at"] = "2000-01-01T00:00:00Z"
    (backups[2].path / MANIFEST).write_text(json.dumps(m))
    assert apply_retention(dest, 30) == []
    assert len(list_backups(dest)) == 1


def test_human_sizes_in_spanish():
    assert human_size(512) == "512 B"
    assert human_size(1536) == "1,5 KB"
    assert human_size(1.5 * 1024 ** 2) == "1,5 MB"
    assert human_size(1234 * 1024 ** 3) == "1.234,0 GB"


WRITER = r"""
import sqlite3, sys, time
db, writer, out, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
import os
con = sqlite3.connect(db, timeout=30, isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA busy_timeout=30000")
n = 0
with open(out, "a") as log:
    while not os.path.exists(stop):
        con.execute("BEGIN IMMEDIATE")
        for k in range(3):  # three rows per transaction: a torn snapshot would show a remainder
            n += 1
            con.execute("INSERT INTO probe(writer, counter, pad) VALUES (?, ?, randomblob(300))", (writer, n))
        con.execute("COMMIT")
        log.write(f"{n}\n"); log.flush()
        time.sleep(0.002)  # let the other writers (and the backup) take the lock too
"""


@pytest.mark.slow
def test_backups_under_four_concurrent_writers_are_consistent(instance, dest, tmp_path):
    db = instance.paths.users_db
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE probe (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, counter INTEGER NOT NULL, pad BLOB)")
    con.commit()
    con.close()
    stop = tmp_path / "stop"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [subprocess.Popen([sys.executable, str(script), str(db), str(w), str(tmp_path / f"w{w}.log"), str(stop)])
             for w in range(4)]
    try:
        time.sleep(0.5)
        results = []
        for _ in range(20):
            res = create_backup(instance, dest, retention_days=3650)
            results.append(res.info)
            time.sleep(0.05)
    finally:
        stop.write_text("stop")
        for p in procs:
            p.wait(timeout=60)
    assert all(p.returncode == 0 for p in procs)
    committed = {w: int((tmp_path / f"w{w}.log").read_text().split()[-1]) for w in range(4)}
    assert all(c > 30 for c in committed.values()), committed
    seen_progress = set()
    for info in results:
        snap = info.path / "users.db"
        c = sqlite3.connect(f"file:{snap}?mode=ro", uri=True)
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for w in range(4):
            counters = [r[0] for r in c.execute("SELECT counter FROM probe WHERE writer=? ORDER BY counter", (w,))]
            # a prefix with no gaps, whole transactions only, never more than was committed
            assert counters == list(range(1, len(counters) + 1)), (info.name, w)
            assert len(counters) % 3 == 0, (info.name, w, len(counters))
            assert len(counters) <= committed[w]
            seen_progress.add((w, len(counters)))
        # the manifest's counts come from the same snapshot
        assert c.execute("SELECT count(*) FROM probe").fetchone()[0] == info.manifest["database"]["tables"]["probe"]
        c.close()
    # the writers really were writing during the backups
    assert len(seen_progress) > 8


PHASES = ["tmpdir", "db", "audit", "manifest", "rename"]


@pytest.mark.slow
def test_kill_9_during_backup_never_leaves_a_backup(home, run_cli, make_user, dest):
    make_user("ana")
    first = run_cli("backup")
    assert first.returncode == 0, first.stderr
    good = list_backups(dest)
    assert len(good) == 1
    good_sums = {f.name: f.read_bytes() for f in good[0].path.rglob("*") if f.is_file()}
    for phase in PHASES:
        time.sleep(1.05)  # distinct names
        r = run_cli("backup", env={"EMTP_TEST_CRASH_AT": phase})
        assert r.returncode == -9, (phase, r.returncode, r.stderr)
        now = list_backups(dest)
        assert [b.name for b in now] == [good[0].name], phase
        hidden = [p for p in dest.iterdir() if p.name.startswith(".tmp-")]
        listed = run_cli("backup", "list")
        assert listed.stdout.count("emtp_") == 1, (phase, listed.stdout)
        for p in hidden:  # a leftover is never restorable
            rr = run_cli("restore", str(p), "--yes")
            assert rr.returncode == 2 and "No se modificó nada" in rr.stderr
    verify_backup(good[0].path)
    assert {f.name: f.read_bytes() for f in good[0].path.rglob("*") if f.is_file()} == good_sums
    # killed after the rename: the backup is complete, so it is listed and verifies
    time.sleep(1.05)
    r = run_cli("backup", env={"EMTP_TEST_CRASH_AT": "retention"})
    assert r.returncode == -9
    assert len(list_backups(dest)) == 2
    verify_backup(list_backups(dest)[-1].path)
    # the next normal backup sweeps the leftovers of the interrupted ones
    time.sleep(1.05)
    assert run_cli("backup").returncode == 0
    assert not [p for p in dest.iterdir() if p.name.startswith((".tmp-", ".del-"))]
    assert len(list_backups(dest)) == 3
    assert os.environ.get("EMTP_TEST_CRASH_AT") is None
