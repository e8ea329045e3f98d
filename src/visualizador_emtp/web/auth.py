"""Login and logout pages (the credential check itself is in auth/login.py)."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for

import time

from visualizador_emtp.auth import csrf
from visualizador_emtp.auth.login import LockoutPolicy, authenticate, change_own_password, end_session, prune
from visualizador_emtp.auth.permissions import login_required, public
from visualizador_emtp.users import service
from visualizador_emtp.web.context import audit, client_ip, instance, user_agent

bp = Blueprint("auth", __name__)

HOME_ENDPOINT = "dashboards.resumen"
PRUNE_EVERY_SECONDS = 3600
_last_prune = 0.0


def _maybe_prune(inst) -> None:
    """Drop expired sessions and month-old login attempts, at most hourly per process."""
    global _last_prune
    now = time.monotonic()
    if now - _last_prune > PRUNE_EVERY_SECONDS:
        _last_prune = now
        prune(inst.db, inst.settings["security.session_idle_minutes"])


def _home_url() -> str:
    try:
        return url_for(HOME_ENDPOINT)
    except Exception:  # dashboards not registered (e.g. a minimal test app)
        return url_for("auth.account")


def _safe_next(target: str | None) -> str | None:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 2000:
        return None
    return target


@bp.get("/")
@public
def index():
    return redirect(_home_url() if g.user else url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if request.method == "GET":
        if g.user:
            return redirect(_safe_next(request.args.get("next")) or _home_url())
        return render_template("login.html", next=_safe_next(request.args.get("next")) or "")
    inst = instance()
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    if len(username) > 200 or len(password) > 1000:
        username, password = username[:200], ""
    result = authenticate(inst.db, username, password, client_ip(), user_agent(),
                          LockoutPolicy.from_settings(inst.settings), inst.settings["security.bcrypt_rounds"])
    target = _safe_next(request.form.get("next"))
    _maybe_prune(inst)
    if not result.ok:
        audit("login", target=result.username, success=False, actor=result.username,
              detail={"reason": result.reason})
        if result.reason.endswith("lockout") or result.reason == "locked":
            audit("lockout", target=result.username, success=False, actor=result.username,
                  detail={"reason": result.reason})
        status = 429 if result.reason == "locked" else 401
        return render_template("login.html", error=result.message, username=result.username,
                               next=target or ""), status
    session.clear()  # rotate: nothing from the anonymous session survives
    session["sid"] = result.token
    csrf.rotate_token()
    audit("login", target=result.username, success=True, actor=result.username)
    return redirect(target or _home_url())


@bp.post("/logout")
@login_required
def logout():
    token = session.get("sid")
    audit("logout", target=g.user.username)
    if token:
        end_session(instance().db, token)
    session.clear()
    flash("Sesión cerrada.", "info")
    return redirect(url_for("auth.login"))


@bp.get("/cuenta")
@login_required
def account():
    return _account_page()


def _account_page(error: str | None = None, status: int = 200):
    return render_template("account.html", account=service.get_user_by_id(instance().db, g.user.id),
                           error=error), status


@bp.post("/cuenta/contrasena")
@login_required
def change_password():
    inst = instance()
    result = change_own_password(
        inst.db, g.user.id, g.user.session_id, request.form.get("current", "")[:1000],
        request.form.get("password", "")[:1000], request.form.get("confirm", "")[:1000], client_ip(),
        LockoutPolicy.from_settings(inst.settings), inst.settings["security.bcrypt_rounds"])
    audit("user_password_change", target=g.user.username, success=result.ok,
          detail=None if result.ok else {"reason": result.reason})
    if result.signed_out:
        audit("lockout", target=g.user.username, success=False, actor=g.user.username,
              detail={"reason": result.reason})
        session.clear()
        flash(result.message, "error")
        return redirect(url_for("auth.login"))
    if not result.ok:
        return _account_page(result.message, 429 if result.reason == "locked" else 422)
    flash("Contraseña actualizada. Se cerraron sus otras sesiones abiertas.", "success")
    return redirect(url_for("auth.account"))
