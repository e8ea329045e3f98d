"""Password rules and bcrypt hashing."""

from __future__ import annotations

import bcrypt

MIN_LENGTH = 8
MAX_BYTES = 72  # bcrypt ignores everything after 72 bytes: refuse instead of truncating


class PasswordError(ValueError):
    """A password that breaks the rules; the message is Spanish, for the user."""


def check_password_rules(password: str, confirm: str | None = None) -> None:
    if password is None or password.strip() == "":
        raise PasswordError("La contraseña no puede estar vacía.")
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"La contraseña debe tener al menos {MIN_LENGTH} caracteres.")
    if len(password.encode("utf-8")) > MAX_BYTES:
        raise PasswordError(f"La contraseña es demasiado larga: máximo {MAX_BYTES} bytes "
                            "(los caracteres con tilde o ñ ocupan 2).")
    if "\x00" in password:
        raise PasswordError("La contraseña contiene caracteres no permitidos.")
    if confirm is not None and confirm != password:
        raise PasswordError("Las contraseñas no coinciden.")


def hash_password(password: str, rounds: int = 12) -> str:
    check_password_rules(password)
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=rounds)).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    try:
        data = password.encode("utf-8")
        if len(data) > MAX_BYTES:
            return False
        return bcrypt.checkpw(data, password_hash.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False


_DUMMY_HASHES: dict[int, str] = {}


def dummy_verify(password: str, rounds: int = 12) -> None:
    """Spend the same time as a real check, so unknown users are not revealed by timing."""
    if rounds not in _DUMMY_HASHES:
        _DUMMY_HASHES[rounds] = bcrypt.hashpw(b"dummy-password", bcrypt.gensalt(rounds=rounds)).decode()
    verify_password(password or "x", _DUMMY_HASHES[rounds])
