"""CSRF protection: one random token per session, required on every state-changing request.

Forms send it as the ``csrf_token`` field; HTMX requests send it in the
``X-CSRF-Token`` header (set once on <body hx-headers=...>).
"""

from __future__ import annotations

import hmac
import secrets

from flask import session

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


def get_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def rotate_token() -> str:
    session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def is_valid(request) -> bool:
    expected = session.get("csrf")
    sent = request.headers.get(HEADER) or request.form.get(FIELD, "")
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(expected.encode(), sent.encode())
