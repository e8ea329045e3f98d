"""The one place that knows about htmx (via htmx-flask), so it could be swapped.

render_page(full, fragment, **ctx): the fragment for HTMX requests (except
history restores, which need the whole page), the full page otherwise.
"""

from __future__ import annotations

from flask import Flask, render_template, request
from htmx_flask import Htmx

HTMX_VERSION = "2.0.11"
HTMX_STATIC = f"vendor/htmx-{HTMX_VERSION}.min.js"


def init_htmx(app: Flask) -> None:
    Htmx(app)


def is_htmx() -> bool:
    hx = getattr(request, "htmx", None)
    return bool(hx) and not hx.history_restore_request


def htmx_target() -> str | None:
    hx = getattr(request, "htmx", None)
    return hx.target if hx else None


def render_page(full_template: str, fragment_template: str, **ctx) -> str:
    return render_template(fragment_template if is_htmx() else full_template, **ctx)


def redirect_response(location: str):
    """A redirect that also works for HTMX requests (full navigation, not a swap)."""
    from flask import make_response, redirect

    if is_htmx():
        resp = make_response("", 204)
        resp.headers["HX-Redirect"] = location
        return resp
    return redirect(location)
