"""Default-deny access control: a view is reachable only if it is marked.

Mark views with @public, @login_required or @admin_required. A before_request
hook (installed by create_app) denies any endpoint that carries no mark, so a
forgotten decorator fails closed.
"""

from __future__ import annotations

from functools import wraps
from typing import Callable

ACCESS_ATTR = "_emtp_access"
PUBLIC, LOGGED_IN, ADMIN = "public", "login", "admin"


def _mark(level: str) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*a, **kw):
            return view(*a, **kw)

        setattr(wrapper, ACCESS_ATTR, level)
        return wrapper

    return decorator


public = _mark(PUBLIC)
login_required = _mark(LOGGED_IN)
admin_required = _mark(ADMIN)


def access_level(view: Callable | None) -> str | None:
    return getattr(view, ACCESS_ATTR, None) if view is not None else None


def allowed(level: str | None, user) -> bool:
    if level == PUBLIC:
        return True
    if level == LOGGED_IN:
        return user is not None
    if level == ADMIN:
        return user is not None and user.role == "admin"
    return False
