"""Request-level helpers for views: the instance, the client, and audit events."""

from __future__ import annotations

from flask import current_app, g, request

from visualizador_emtp.instance import Instance


def instance() -> Instance:
    return current_app.extensions["emtp"]


def user_agent() -> str:
    return (request.headers.get("User-Agent") or "")[:300]


def client_ip() -> str:
    return (request.remote_addr or "")[:64]


def audit(event: str, target: str = "", success: bool = True, detail=None, actor: str | None = None) -> None:
    """Append an audit event attributed to the current request's user (or ``actor``)."""
    who = actor if actor is not None else (g.user.username if g.get("user") else "")
    instance().audit.append(event, actor=who, target=target, success=success, ip=client_ip(),
                            user_agent=user_agent(), detail=detail)
