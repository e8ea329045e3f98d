"""Credential checks and the lockout rule, on a real SQLite users.db."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from visualizador_emtp.auth.login import GENERIC_FAILURE, LockoutPolicy, authenticate, is_locked
from visualizador_emtp.auth.models import LoginAttempt
from visualizador_emtp.auth.passwords import hash_password, verify_password
from visualizador_emtp.db import utcnow
from visualizador_emtp.users import service

POLICY = LockoutPolicy(max_failures=5, window_minutes=15, lock_minutes=15)


def test_bcrypt_cost_and_verification():
    h = hash_password("Clave-segura-1", rounds=12)
    assert h.startswith("$2b$12$")
    assert verify_password("Clave-segura-1", h)
    assert not verify_password("clave-segura-1", h)
    assert not verify_password("x" * 100, h)  # over 72 bytes is never accepted, never truncated


def test_unknown_user_and_wrong_password_look_the_same(instance):
    service.create_user(instance.db, "ana", "Clave-segura-1", "analista", bcrypt_rounds=10)

    def timed(username):
        t = time.perf_counter()
        r = authenticate(instance.db, username, "mala-clave-123", f"10.0.0.{hash(username) % 200}", "ua",
                         LockoutPolicy(max_failures=1000), bcrypt_rounds=10)
        return r, time.perf_counter() - t

    unknown, bad = [], []
    for i in range(6):
        r1, t1 = timed(f"nadie{i}")
        r2, t2 = timed("ana")
        assert r1.message == r2.message == GENERIC_FAILURE and not r1.ok and not r2.ok
        unknown.append(t1)
        bad.append(t2)
    ratio = statistics.median(unknown) / statistics.median(bad)
    assert 0.5 < ratio < 2.0, ratio  # both pay one bcrypt check of the same cost


def _fail_at(instance, username, minutes_ago, ip="9.9.9.9"):
    with instance.db.session() as s:
        s.add(LoginAttempt(username=username, ip=ip, success=False, ts=utcnow() - timedelta(minutes=minutes_ago)))


def test_five_failures_within_window_lock(instance):
    for m in (10, 8, 6, 4, 2):
        _fail_at(instance, "pepe", m, ip=f"1.1.1.{m}")
    with instance.db.session() as s:
        assert is_locked(s, "pepe", "2.2.2.2", POLICY)


def test_failures_spread_beyond_window_do_not_lock(instance):
    for m in (29, 24, 19, 14, 9):  # 20 minutes between first and fifth
        _fail_at(instance, "pepe", m, ip=f"1.1.1.{m}")
    with instance.db.session() as s:
        assert not is_locked(s, "pepe", "2.2.2.2", POLICY)


def test_lock_expires_after_lock_minutes(instance):
    for m in (24, 23, 22, 21, 20):  # locked at -20 min; lock of 15 min ended 5 minutes ago
        _fail_at(instance, "pepe", m, ip=f"1.1.1.{m}")
    with instance.db.session() as s:
        assert not is_locked(s, "pepe", "2.2.2.2", POLICY)


def test_lock_by_ip_for_many_usernames(instance):
    for i, m in enumerate((5, 4, 3, 2, 1)):
        _fail_at(instance, f"usuario{i}", m, ip="7.7.7.7")
    with instance.db.session() as s:
        assert is_locked(s, "otra-persona", "7.7.7.7", POLICY)
        assert not is_locked(s, "otra-persona", "7.7.7.8", POLICY)


def test_locked_account_refuses_right_password_then_recovers(instance):
    service.create_user(instance.db, "ana", "Clave-segura-1", "analista", bcrypt_rounds=4)
    for i in range(5):
        r = authenticate(instance.db, "ana", "mala", f"3.3.3.{i}", "ua", POLICY, 4)
        assert r.reason.startswith("bad_password")
    assert r.reason.endswith("lockout")
    r = authenticate(instance.db, "ANA", "Clave-segura-1", "3.3.3.9", "ua", POLICY, 4)
    assert not r.ok and r.reason == "locked" and "15 minutos" in r.message
    with instance.db.session() as s:  # move the failures 31 minutes into the past
        for a in s.query(LoginAttempt).all():
            a.ts = a.ts - timedelta(minutes=31)
    assert authenticate(instance.db, "ana", "Clave-segura-1", "3.3.3.9", "ua", POLICY, 4).ok


def test_inactive_user_cannot_log_in(instance):
    u = service.create_user(instance.db, "ana", "Clave-segura-1", "analista", bcrypt_rounds=4)
    service.set_active(instance.db, u.id, False)
    r = authenticate(instance.db, "ana", "Clave-segura-1", "4.4.4.4", "ua", POLICY, 4)
    assert not r.ok and r.reason == "inactive" and r.message == GENERIC_FAILURE
