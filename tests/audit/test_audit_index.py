"""The audit index agrees with a brute-force scan of the log files, ingests incrementally, follows
logrotate without counting anything twice, and is safe with several processes ingesting at once."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import shutil
import sqlite3
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit_helpers import EVENTS, brute_filter, chile_day, scan_records, write_events
from visualizador_emtp.audit import query as q
from visualizador_emtp.audit.chain import AuditLog
from visualizador_emtp.audit.index import AuditIndex, chile_day_bounds
from visualizador_emtp.instance import Instance


class _Inst:
    """The two things the index needs from an Instance (audit log + run dir), for module-scoped data."""

    def __init__(self, root: Path):
        self.audit = AuditLog(root / "logs" / "audit.jsonl", root / "run")
        self.paths = type("P", (), {"run_dir": root / "run"})()


def _db_counts(inst) -> tuple[int, int]:
    con = sqlite3.connect(inst.paths.run_dir / "audit_index.db")
    try:
        return con.execute("SELECT count(*), count(DISTINCT json_extract(raw, '$.hash')) FROM events").fetchone()
    finally:
        con.close()


def _assert_mirrors_files(inst) -> None:
    records = scan_records(inst.audit)
    rows, distinct = _db_counts(inst)
    assert rows == distinct == len(records)  # nothing missing, nothing twice
    everything = q.query(inst, q.Filters(period="custom", date_from=date(2000, 1, 1), date_to=date(2999, 1, 1)),
                         page=1, page_size=500)
    assert everything.total == len(records)


# -- equivalence with a brute-force scan ---------------------------------------------------------

# Events every 17 minutes from 2025-03-20 to 2025-04-20 (crosses the end of Chile's DST on 2025-04-06),
# with two rotations (one gzipped) so the reference covers several files.
START = datetime(2025, 3, 20, 2, 0, tzinfo=timezone.utc)
STEP = timedelta(minutes=17)
TOTAL = 2600


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    root = tmp_path_factory.mktemp("auditbig")
    inst = _Inst(root)
    log = inst.audit
    write_events(log, 900, START, STEP, seed=1)
    rotated = log.path.with_name("audit.jsonl.1")
    os.rename(log.path, rotated)
    write_events(log, 900, START + STEP * 900, STEP, seed=2)
    with open(rotated, "rb") as src, gzip.open(log.path.with_name("audit.jsonl.2.gz"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    rotated.unlink()
    os.rename(log.path, rotated)
    write_events(log, TOTAL - 1800, START + STEP * 1800, STEP, seed=3)
    # a few failed logins by one user on one day, to trigger the > 5 alert
    for i in range(7):
        log.append("login", actor="mallory", success=False, detail={"reason": "bad_password"},
                   ts=datetime(2025, 4, 10, 15, i, tzinfo=timezone.utc))
    assert log.verify().ok
    AuditIndex.for_instance(inst).refresh()
    return inst, scan_records(log)


DAYS = st.dates(min_value=date(2025, 3, 15), max_value=date(2025, 4, 25))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(today=DAYS, period=st.sampled_from(["hoy", "7d", "30d", "custom"]), d1=DAYS, d2=DAYS,
       user=st.sampled_from(["", "ana", "ANA", "beto", "cli:root", "mallory", "nadie"]),
       event=st.sampled_from(["", *EVENTS]), outcome=st.sampled_from(["all", "ok", "fail"]),
       page=st.integers(1, 60), page_size=st.sampled_from([1, 7, 50, 200]))
def test_query_equals_brute_force(big, today, period, d1, d2, user, event, outcome, page, page_size):
    inst, records = big
    f = q.Filters(period=period, date_from=d1, date_to=d2, user=user, event=event, outcome=outcome)
    first, last = f.days(today)
    expected = brute_filter(records, first, last, user, event, outcome)
    got = q.query(inst, f, page=page, page_size=page_size, today=today, refresh=False)
    assert got.total == len(expected)
    pages = max(1, -(-len(expected) // page_size))
    assert got.pages == pages and got.page == min(page, pages)
    start = (got.page - 1) * page_size
    assert [r.record["hash"] for r in got.rows] == [r["hash"] for r in expected[start:start + page_size]]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(today=DAYS, period=st.sampled_from(["hoy", "7d", "30d", "custom"]), d1=DAYS, d2=DAYS,
       user=st.sampled_from(["", "ana", "mallory", "carla"]))
def test_summary_equals_brute_force(big, today, period, d1, d2, user):
    inst, records = big
    f = q.Filters(period=period, date_from=d1, date_to=d2, user=user)
    first, last = f.days(today)
    rows = brute_filter(records, first, last, user)
    s = q.summary(inst, f, today=today, refresh=False, top=50)
    assert (s.first_day, s.last_day) == (first, last)
    assert s.total_events == len(rows)
    assert s.logins_ok == sum(1 for r in rows if r["event"] == "login" and r["success"])
    assert s.logins_failed == sum(1 for r in rows if r["event"] == "login" and not r["success"])
    assert s.failed_events == sum(1 for r in rows if not r["success"])
    assert s.distinct_users == len({r["actor"].lower() for r in rows if r["success"] and r["actor"]})
    assert dict(s.top_events) == dict(Counter(r["event"] for r in rows))
    assert dict(s.top_pages) == dict(Counter(r["detail"]["page"] for r in rows if r["event"] == "page_view"))
    failed = Counter(r["actor"] for r in rows if r["event"] == "login" and not r["success"])
    assert dict(s.suspicious_users) == {a: n for a, n in failed.items() if n > q.FAILED_ATTEMPTS_ALERT}


def test_alert_lists_users_with_more_than_five_failures(big):
    inst, _ = big
    s = q.summary(inst, q.Filters(period="hoy"), today=date(2025, 4, 10), refresh=False)
    assert ("mallory", 7) in s.suspicious_users


def test_day_bounds_follow_chile_time_across_dst():
    # 2025-04-05 is still summer time (UTC-3); 2025-04-06 is winter time (UTC-4)
    assert chile_day_bounds(date(2025, 4, 5), date(2025, 4, 5)) == ("2025-04-05T03:00:00.000Z",
                                                                     "2025-04-06T04:00:00.000Z")
    assert chile_day(("2025-04-06T03:30:00.000Z")) == date(2025, 4, 5)


def test_csv_lines_equal_the_filtered_rows(big):
    inst, records = big
    f = q.Filters(period="7d", event="login", outcome="fail")
    today = date(2025, 4, 12)
    text = "".join(q.csv_lines(inst, f, today=today, refresh=False))
    assert text.startswith("\ufeff")
    import csv
    import io
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    assert tuple(rows[0]) == q.CSV_COLUMNS
    expected = brute_filter(records, *f.days(today), event="login", outcome="fail")
    assert [r[11] for r in rows[1:]] == [r["hash"] for r in expected]
    assert all(r[6] == "fallido" and r[3] == "login" for r in rows[1:])


# -- incremental ingest and rotation ---------------------------------------------------------------

@pytest.fixture
def small(tmp_path):
    inst = _Inst(tmp_path)
    return inst, AuditIndex.for_instance(inst)


def _now_events(log: AuditLog, n: int, seed: int = 0) -> None:
    write_events(log, n, datetime.now(timezone.utc) - timedelta(hours=1), timedelta(seconds=1), seed=seed)


def test_incremental_ingest_reads_only_new_lines(small):
    inst, idx = small
    _now_events(inst.audit, 300)
    first = idx.refresh()
    assert first.lines == 300
    assert idx.refresh().lines == 0 and idx.refresh().bytes == 0
    size_before = inst.audit.path.stat().st_size
    _now_events(inst.audit, 25, seed=5)
    second = idx.refresh()
    assert second.lines == 25
    assert second.bytes == inst.audit.path.stat().st_size - size_before  # only the appended bytes
    _assert_mirrors_files(inst)


def test_rotation_by_rename_finishes_the_old_file(small):
    inst, idx = small
    log = inst.audit
    _now_events(log, 100)
    idx.refresh()
    _now_events(log, 30, seed=1)  # appended after the last ingest, before the rotation
    os.rename(log.path, log.path.with_name("audit.jsonl.1"))
    _now_events(log, 40, seed=2)
    stats = idx.refresh()
    assert stats.lines == 70 and not stats.rebuilt
    _assert_mirrors_files(inst)
    assert log.verify().ok


def test_rotation_compressed_at_once_and_several_rotations_between_ingests(small):
    inst, idx = small
    log = inst.audit
    _now_events(log, 50)
    idx.refresh()
    for k in range(3):  # three rotations before the next ingest: .1 → .2.gz …, no delaycompress
        _now_events(log, 20, seed=k)
        for n in range(k + 1, 0, -1):
            src = log.path.with_name(f"audit.jsonl.{n}.gz")
            if src.exists():
                os.rename(src, log.path.with_name(f"audit.jsonl.{n + 1}.gz"))
        with open(log.path, "rb") as s, gzip.open(log.path.with_name("audit.jsonl.1.gz"), "wb") as d:
            shutil.copyfileobj(s, d)
        log.path.unlink()
    _now_events(log, 10, seed=9)
    stats = idx.refresh()
    assert stats.lines == 70 and not stats.rebuilt
    _assert_mirrors_files(inst)
    assert log.verify().ok


def test_copytruncate_rotation(small):
    inst, idx = small
    log = inst.audit
    _now_events(log, 60)
    idx.refresh()
    _now_events(log, 15, seed=1)
    shutil.copyfile(log.path, log.path.with_name("audit.jsonl.1"))
    idx.refresh()  # the copy and the original share a fingerprint at this moment
    os.truncate(log.path, 0)
    _now_events(log, 5, seed=2)
    idx.refresh()
    _assert_mirrors_files(inst)


def test_deleted_oldest_rotation_drops_its_rows(small):
    inst, idx = small
    log = inst.audit
    _now_events(log, 40)
    os.rename(log.path, log.path.with_name("audit.jsonl.1"))
    _now_events(log, 10, seed=1)
    idx.refresh()
    assert _db_counts(inst)[0] == 50
    log.path.with_name("audit.jsonl.1").unlink()
    stats = idx.refresh()
    assert stats.removed == 40
    _assert_mirrors_files(inst)
    s = q.summary(inst, q.Filters(period="hoy"), refresh=False)
    assert s.total_events == 10  # the roll-up lost them too


def test_restored_older_copy_makes_the_index_rebuild(small):
    inst, idx = small
    log = inst.audit
    _now_events(log, 30)
    backup = log.path.read_bytes()
    _now_events(log, 30, seed=1)
    idx.refresh()
    log.path.write_bytes(backup)  # what a restore of an older backup does
    log.reset_head()
    stats = idx.refresh()
    assert stats.rebuilt
    _assert_mirrors_files(inst)
    _now_events(log, 5, seed=2)  # and it keeps following the restored file
    assert idx.refresh().lines == 5
    _assert_mirrors_files(inst)


def test_edited_line_in_place_is_detected(small):
    inst, idx = small
    log = inst.audit
    _now_events(log, 10)
    idx.refresh()
    text = log.path.read_text()
    last = text.splitlines()[-1]
    edited = last.replace('"ip":"10.0.0.', '"ip":"10.0.9.')  # same length, different content
    assert edited != last and len(edited) == len(last)
    log.path.write_text(text.replace(last, edited))
    _now_events(log, 1, seed=3)
    assert idx.refresh().rebuilt
    _assert_mirrors_files(inst)


def test_partial_line_waits_for_its_newline(small):
    inst, idx = small
    log = inst.audit
    _now_events(log, 3)
    rec = json.dumps({"ts": "2025-01-01T00:00:00.000Z", "event": "login", "actor": "ana", "success": True,
                      "hash": "x" * 64, "prev": "y" * 64})
    with open(log.path, "ab") as f:
        f.write(rec[:20].encode())
    assert idx.refresh().lines == 3
    with open(log.path, "ab") as f:
        f.write(rec[20:].encode() + b"\n")
    assert idx.refresh().lines == 1
    assert _db_counts(inst)[0] == 4


def test_unreadable_lines_are_skipped_not_fatal(small):
    inst, idx = small
    log = inst.audit
    _now_events(log, 3)
    with open(log.path, "ab") as f:
        f.write(b"esto no es json\n{\"ts\": \"ayer\"}\n\n")
    _now_events(log, 2, seed=1)
    stats = idx.refresh()
    assert stats.lines == 5 and stats.skipped == 3


def test_failed_logins_by_user(instance):
    log = instance.audit
    now = datetime.now(timezone.utc)
    for i in range(4):
        log.append("login", actor="ana", success=False, ts=now - timedelta(days=1, minutes=i))
    log.append("login", actor="ana", success=False, ts=now - timedelta(days=10))  # too old
    log.append("login", actor="beto", success=False, ts=now - timedelta(hours=2))
    log.append("login", actor="beto", success=True, ts=now - timedelta(hours=1))
    log.append("lockout", actor="beto", success=False, ts=now - timedelta(hours=1))
    assert q.failed_logins_by_user(instance, now - timedelta(days=7)) == {"ana": 4, "beto": 1}
    naive = (now - timedelta(days=7)).replace(tzinfo=None)
    assert q.failed_logins_by_user(instance, naive) == {"ana": 4, "beto": 1}


# -- several processes ---------------------------------------------------------------------------

def _ingester(home: str, rounds: int, start) -> None:
    inst = Instance.load(home)
    idx = AuditIndex.for_instance(inst)
    start.wait()
    for _ in range(rounds):
        idx.refresh(wait=60)


def _writer(home: str, n: int, start) -> None:
    inst = Instance.load(home)
    start.wait()
    for i in range(n):
        inst.audit.append("page_view", actor=f"p{i % 5}", detail={"page": "resumen"})
        if i == n // 2:  # logrotate in the middle of it all
            os.rename(inst.audit.path, inst.audit.path.with_name("audit.jsonl.1"))


@pytest.mark.slow
def test_concurrent_ingest_from_several_processes_never_double_counts(home, instance):
    _now_events(instance.audit, 500)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_ingester, args=(str(home), 40, start)) for _ in range(4)]
    procs.append(ctx.Process(target=_writer, args=(str(home), 1500, start)))
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    AuditIndex.for_instance(instance).refresh()
    rows, distinct = _db_counts(instance)
    assert rows == distinct == 2000
    _assert_mirrors_files(instance)
    assert instance.audit.verify().ok


def test_bulk_first_ingest_rebuilds_the_secondary_indexes(small, monkeypatch):
    from visualizador_emtp.audit import index as index_mod

    inst, idx = small
    monkeypatch.setattr(index_mod, "BULK_REINDEX_BYTES", 0)  # treat this small log as a big first ingest
    monkeypatch.setattr(index_mod, "BATCH_LINES", 7)  # and commit in many small batches
    _now_events(inst.audit, 100)
    assert idx.refresh().lines == 100
    con = sqlite3.connect(idx.db_path)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    plan = " ".join(r[3] for r in con.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM events WHERE event = 'login' AND ts >= '2000' ORDER BY ts DESC"))
    con.close()
    assert set(index_mod._SECONDARY_NAMES) <= names
    assert "ix_events_event_ts" in plan and "TEMP B-TREE" not in plan
    _assert_mirrors_files(inst)


def test_interrupted_bulk_ingest_gets_its_indexes_back(small):
    inst, idx = small
    _now_events(inst.audit, 20)
    idx.refresh()
    con = sqlite3.connect(idx.db_path)
    con.execute("DROP INDEX ix_events_actor_ts")  # what a worker killed mid bulk-ingest leaves behind
    con.commit()
    con.close()
    _now_events(inst.audit, 1, seed=4)
    idx.refresh()
    con = sqlite3.connect(idx.db_path)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    con.close()
    assert "ix_events_actor_ts" in names


def test_index_file_is_not_world_readable(small):
    inst, idx = small
    _now_events(inst.audit, 2)
    idx.refresh()
    assert idx.db_path.stat().st_mode & 0o777 == 0o640


def test_time_budget_spreads_a_backlog_over_several_calls(small, monkeypatch):
    from visualizador_emtp.audit import index as index_mod

    inst, idx = small
    monkeypatch.setattr(index_mod, "BATCH_LINES", 10)
    _now_events(inst.audit, 95)
    os.rename(inst.audit.path, inst.audit.path.with_name("audit.jsonl.1"))
    _now_events(inst.audit, 40, seed=1)
    per_call = []
    while True:
        stats = idx.refresh(budget=0)  # stop after every committed batch
        per_call.append(stats.lines)
        if not stats.partial:
            break
        assert not stats.rebuilt and len(per_call) < 50
    # one batch per call (plus the short tail of a finished file): 135 lines over many calls
    assert sum(per_call) == 135 and len(per_call) >= 12 and max(per_call) <= 20
    _assert_mirrors_files(inst)
    rows, _ = _db_counts(inst)
    assert rows == 135
