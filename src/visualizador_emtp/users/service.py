"""User management: the functions behind both the Gestión de Usuarios page and emtp-admin users."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from visualizador_emtp.auth.login import end_user_sessions
from visualizador_emtp.auth.passwords import check_password_rules, hash_password
from visualizador_emtp.db import Database, utcnow
from visualizador_emtp.users.models import ROLES, User

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
EMAIL_RE = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")


class UserError(ValueError):
    """Invalid input or a forbidden change; the message is Spanish, for the user."""


def _clean_text(value: str | None, field: str, max_len: int, required: bool = False) -> str:
    text = unicodedata.normalize("NFC", (value or "")).strip()
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in text):
        raise UserError(f"{field} contiene caracteres no permitidos.")
    if required and not text:
        raise UserError(f"{field} es obligatorio.")
    if len(text) > max_len:
        raise UserError(f"{field} admite como máximo {max_len} caracteres.")
    return text


def validate_username(username: str | None) -> str:
    name = _clean_text(username, "El nombre de usuario", 64, required=True)
    if not USERNAME_RE.match(name):
        raise UserError("El nombre de usuario debe tener entre 2 y 64 caracteres: letras sin tilde, "
                        "números, punto, guion o guion bajo, y comenzar con letra o número.")
    return name


def validate_email(email: str | None) -> str:
    text = _clean_text(email, "El correo", 254)
    if text and not EMAIL_RE.match(text):
        raise UserError("El correo no tiene un formato válido (nombre@dominio.cl).")
    return text


def validate_role(role: str | None) -> str:
    r = (role or "").strip().lower()
    if r not in ROLES:
        raise UserError("El perfil debe ser 'admin' o 'analista'.")
    return r


@dataclass
class UserView:
    id: int
    username: str
    full_name: str
    email: str
    role: str
    is_active: bool
    created_at: datetime
    updated_at: datetime
    last_login: datetime | None
    password_changed_at: datetime

    @classmethod
    def of(cls, u: User) -> "UserView":
        return cls(u.id, u.username, u.full_name, u.email, u.role, u.is_active, u.created_at,
                   u.updated_at, u.last_login, u.password_changed_at)


def _by_name(s, username: str) -> User | None:
    return s.scalar(select(User).where(func.lower(User.username) == (username or "").strip().lower()))


def get_user(db: Database, username: str) -> UserView:
    with db.session() as s:
        u = _by_name(s, username)
        if u is None:
            raise UserError(f"No existe el usuario '{username}'.")
        return UserView.of(u)


def get_user_by_id(db: Database, user_id: int) -> UserView:
    with db.session() as s:
        u = s.get(User, user_id)
        if u is None:
            raise UserError("El usuario no existe.")
        return UserView.of(u)


def create_user(db: Database, username: str, password: str, role: str, full_name: str = "",
                email: str = "", confirm: str | None = None, bcrypt_rounds: int = 12) -> UserView:
    name = validate_username(username)
    role = validate_role(role)
    full = _clean_text(full_name, "El nombre completo", 200)
    mail = validate_email(email)
    try:
        check_password_rules(password, confirm)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    pw_hash = hash_password(password, bcrypt_rounds)
    with db.session() as s:
        if _by_name(s, name) is not None:
            raise UserError(f"Ya existe un usuario llamado '{name}' (los nombres no distinguen mayúsculas).")
        u = User(username=name, full_name=full, email=mail, role=role, password_hash=pw_hash, is_active=True,
                 failed_logins=0)
        s.add(u)
        s.flush()
        return UserView.of(u)


def _active_admins(s) -> int:
    return s.scalar(select(func.count()).select_from(User).where(User.role == "admin", User.is_active.is_(True)))


def update_user(db: Database, user_id: int, *, actor_id: int | None = None, role: str | None = None,
                full_name: str | None = None, email: str | None = None, password: str | None = None,
                confirm: str | None = None, bcrypt_rounds: int = 12) -> tuple[UserView, list[str]]:
    """Apply the given changes; returns the user and the names of the fields that changed."""
    new_role = validate_role(role) if role is not None else None
    new_full = _clean_text(full_name, "El nombre completo", 200) if full_name is not None else None
    new_mail = validate_email(email) if email is not None else None
    new_hash = None
    if password:
        try:
            check_password_rules(password, confirm)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        new_hash = hash_password(password, bcrypt_rounds)
    with db.session() as s:
        u = s.get(User, user_id)
        if u is None:
            raise UserError("El usuario no existe.")
        changed = []
        if new_role is not None and new_role != u.role:
            if u.role == "admin" and u.is_active and _active_admins(s) <= 1:
                raise UserError("No se puede quitar el perfil admin al último administrador activo.")
            u.role = new_role
            changed.append("role")
        if new_full is not None and new_full != u.full_name:
            u.full_name = new_full
            changed.append("full_name")
        if new_mail is not None and new_mail != u.email:
            u.email = new_mail
            changed.append("email")
        if new_hash is not None:
            u.password_hash = new_hash
            u.password_changed_at = utcnow()
            u.failed_logins = 0
            u.locked_until = None
            changed.append("password")
            if actor_id != u.id:
                end_user_sessions(s, u.id)
        if changed:
            u.updated_at = utcnow()
        return UserView.of(u), changed


def set_active(db: Database, user_id: int, active: bool) -> tuple[UserView, bool]:
    """Deactivate or reactivate; returns (user, changed). Deactivation ends the user's sessions."""
    with db.session() as s:
        u = s.get(User, user_id)
        if u is None:
            raise UserError("El usuario no existe.")
        if u.is_active == active:
            return UserView.of(u), False
        if not active and u.role == "admin" and _active_admins(s) <= 1:
            raise UserError("No se puede desactivar al último administrador activo.")
        u.is_active = active
        u.updated_at = utcnow()
        if not active:
            end_user_sessions(s, u.id)
        return UserView.of(u), True


def list_users(db: Database, *, active: bool | None = None, role: str | None = None, text: str = "",
               inactive_days: int | None = None) -> list[UserView]:
    with db.session() as s:
        q = select(User)
        if active is not None:
            q = q.where(User.is_active.is_(active))
        if role in ROLES:
            q = q.where(User.role == role)
        text = (text or "").strip()[:100]
        if text:
            like = f"%{text.lower()}%"
            q = q.where(or_(func.lower(User.username).like(like), func.lower(User.full_name).like(like),
                            func.lower(User.email).like(like)))
        if inactive_days is not None:
            cutoff = utcnow() - timedelta(days=inactive_days)
            q = q.where(User.is_active.is_(True), or_(User.last_login < cutoff,
                                                       (User.last_login.is_(None)) & (User.created_at < cutoff)))
        return [UserView.of(u) for u in s.scalars(q.order_by(func.lower(User.username))).all()]


def inactive_users(db: Database, days: int) -> list[UserView]:
    """Active accounts with no login in ``days`` days (never-used accounts older than that count too)."""
    return list_users(db, inactive_days=days)
