"""Where logins are checked: credentials, lockout (shared through the database), sessions."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select

from visualizador_emtp.auth.models import LoginAttempt, UserSession
from visualizador_emtp.auth.passwords import PasswordError, check_password_rules, dummy_verify, hash_password, \
    verify_password
from visualizador_emtp.db import Database, utcnow
from visualizador_emtp.users.models import User

GENERIC_FAILURE = "Usuario o contraseña incorrectos."
LOCKED_MESSAGE = "Demasiados intentos fallidos. Espere {minutes} minutos e intente nuevamente."
INACTIVE_MESSAGE = GENERIC_FAILURE  # do not reveal that the account exists


@dataclass
class LoginResult:
    ok: bool
    message: str = ""
    reason: str = ""  # for the audit trail: ok, unknown_user, bad_password, inactive, locked
    user_id: int | None = None
    username: str = ""
    role: str = ""
    token: str = ""  # the cookie value of the new server-side session


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    window_minutes: int = 15
    lock_minutes: int = 15

    @classmethod
    def from_settings(cls, settings) -> "LockoutPolicy":
        return cls(settings["security.lockout_max_failures"], settings["security.lockout_window_minutes"],
                   settings["security.lockout_minutes"])


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def is_locked(db_session, username: str, ip: str, policy: LockoutPolicy) -> bool:
    """Locked when, within the lock period, there were max_failures failures inside one window.

    Counted from the login_attempts table, so every worker process sees the same state.
    """
    now = utcnow()
    since = now - timedelta(minutes=policy.window_minutes + policy.lock_minutes)
    for column, value in ((LoginAttempt.username, username), (LoginAttempt.ip, ip)):
        if not value:
            continue
        stamps = db_session.scalars(
            select(LoginAttempt.ts).where(column == value, LoginAttempt.success.is_(False), LoginAttempt.ts >= since)
            .order_by(LoginAttempt.ts)
        ).all()
        # a lockout starts at the failure that completes max_failures within a window
        for i in range(policy.max_failures - 1, len(stamps)):
            first, last = stamps[i - policy.max_failures + 1], stamps[i]
            if last - first <= timedelta(minutes=policy.window_minutes) and \
                    now - last < timedelta(minutes=policy.lock_minutes):
                return True
    return False


def _record_failure(s, user: User | None, key: str, ip: str, policy: LockoutPolicy) -> bool:
    """Count a failed password check (login or own password change); True when it starts a lockout."""
    s.add(LoginAttempt(username=key, ip=ip, success=False))
    if user is not None:
        user.failed_logins = (user.failed_logins or 0) + 1
    s.flush()
    locked_now = is_locked(s, key, ip, policy)
    if locked_now and user is not None:
        user.locked_until = utcnow() + timedelta(minutes=policy.lock_minutes)
    return locked_now


def authenticate(db: Database, username: str, password: str, ip: str, user_agent: str,
                 policy: LockoutPolicy, bcrypt_rounds: int = 12) -> LoginResult:
    typed = (username or "").strip()[:64]
    key = typed.lower()
    with db.session() as s:
        if is_locked(s, key, ip, policy):
            s.add(LoginAttempt(username=key, ip=ip, success=False))
            return LoginResult(False, LOCKED_MESSAGE.format(minutes=policy.lock_minutes), "locked", username=typed)
        user = s.scalar(select(User).where(func.lower(User.username) == key)) if key else None
        if user is None:
            dummy_verify(password or "", bcrypt_rounds)
            reason = "unknown_user"
        elif not verify_password(password or "", user.password_hash):
            reason = "bad_password"
        elif not user.is_active:
            reason = "inactive"
        else:
            reason = "ok"
        if reason != "ok":
            locked_now = _record_failure(s, user, key, ip, policy)
            return LoginResult(False, GENERIC_FAILURE, reason + (",lockout" if locked_now else ""), username=typed)
        s.add(LoginAttempt(username=key, ip=ip, success=True))
        token = secrets.token_urlsafe(32)
        now = utcnow()
        user.last_login = now
        user.failed_logins = 0
        user.locked_until = None
        s.add(UserSession(id=_session_id(token), user_id=user.id, created_at=now, last_seen=now,
                          ip=ip[:64], user_agent=(user_agent or "")[:300]))
        return LoginResult(True, "", "ok", user.id, user.username, user.role, token)


@dataclass
class PasswordChange:
    ok: bool
    message: str = ""
    reason: str = ""  # for the audit trail: ok, missing, bad_password, invalid, same, locked
    signed_out: bool = False  # the session was ended (too many wrong current passwords)


def change_own_password(db: Database, user_id: int, session_id: str, current: str, new: str, confirm: str,
                        ip: str, policy: LockoutPolicy, bcrypt_rounds: int = 12) -> PasswordChange:
    """A logged-in user changes their own password, proving the current one.

    A wrong current password counts as a failed login (same table, same lockout), so a stolen
    session cannot be used to guess it: when the lockout triggers, this session is ended too.
    On success every other session of the user is ended; this one stays.
    """
    if not current or not new or not confirm:
        return PasswordChange(False, "Complete la contraseña actual, la nueva y su confirmación.", "missing")
    with db.session() as s:
        user = s.get(User, user_id)
        key = user.username.lower()
        if is_locked(s, key, ip, policy):
            return PasswordChange(False, LOCKED_MESSAGE.format(minutes=policy.lock_minutes), "locked")
        if not verify_password(current, user.password_hash):
            if _record_failure(s, user, key, ip, policy):
                s.execute(delete(UserSession).where(UserSession.id == session_id))
                return PasswordChange(False, LOCKED_MESSAGE.format(minutes=policy.lock_minutes),
                                      "bad_password,lockout", signed_out=True)
            return PasswordChange(False, "La contraseña actual no es correcta.", "bad_password")
        try:
            check_password_rules(new, confirm)
        except PasswordError as exc:
            return PasswordChange(False, str(exc), "invalid")
        if verify_password(new, user.password_hash):
            return PasswordChange(False, "La nueva contraseña debe ser distinta de la actual.", "same")
        now = utcnow()
        user.password_hash = hash_password(new, bcrypt_rounds)
        user.password_changed_at = now
        user.updated_at = now
        user.failed_logins = 0
        user.locked_until = None
        s.execute(delete(UserSession).where(UserSession.user_id == user_id, UserSession.id != session_id))
        return PasswordChange(True, "", "ok")


@dataclass
class SessionUser:
    id: int
    username: str
    full_name: str
    role: str
    session_id: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def load_session(db: Database, token: str, idle_minutes: int) -> tuple[SessionUser | None, str]:
    """The user behind a session token, or (None, reason) with reason 'expired' or 'invalid'."""
    if not token or len(token) > 100:
        return None, "invalid"
    sid = _session_id(token)
    now = utcnow()
    with db.session() as s:
        row = s.get(UserSession, sid)
        if row is None:
            return None, "invalid"
        user = s.get(User, row.user_id)
        if user is None or not user.is_active:
            s.delete(row)
            return None, "invalid"
        if now - row.last_seen > timedelta(minutes=idle_minutes):
            s.delete(row)
            return None, "expired"
        if now - row.last_seen > timedelta(seconds=30):  # bound the writes
            row.last_seen = now
        return SessionUser(user.id, user.username, user.full_name, user.role, sid), ""


def end_session(db: Database, token: str) -> None:
    with db.session() as s:
        s.execute(delete(UserSession).where(UserSession.id == _session_id(token)))


def end_user_sessions(s, user_id: int) -> None:
    """Revoke every session of a user (deactivation, password change by an admin)."""
    s.execute(delete(UserSession).where(UserSession.user_id == user_id))


def prune(db: Database, idle_minutes: int, keep_attempt_days: int = 30) -> None:
    now = utcnow()
    with db.session() as s:
        s.execute(delete(UserSession).where(UserSession.last_seen < now - timedelta(minutes=idle_minutes)))
        s.execute(delete(LoginAttempt).where(LoginAttempt.ts < now - timedelta(days=keep_attempt_days)))
