"""Gestión de Usuarios (admin): list, create, edit, deactivate / reactivate, inactive view.

All changes go through users/service.py (the same functions emtp-admin uses) and are audited.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, render_template, request, url_for

from visualizador_emtp.auth.permissions import admin_required
from visualizador_emtp.users import service
from visualizador_emtp.users.service import UserError
from visualizador_emtp.web.context import audit, instance
from visualizador_emtp.web.htmx import is_htmx, redirect_response, render_page

bp = Blueprint("users_admin", __name__, url_prefix="/admin/usuarios")

INACTIVE_DAYS = 30
MAX_ID = 2**31 - 1


def _filters() -> dict:
    args = request.args
    estado = args.get("estado", "activos")
    if estado not in ("activos", "inactivos", "todos"):
        estado = "activos"
    perfil = args.get("perfil", "")
    if perfil not in ("", "admin", "analista"):
        perfil = ""
    vista = args.get("vista", "")
    if vista not in ("", "sin_acceso"):
        vista = ""
    return {"estado": estado, "perfil": perfil, "q": args.get("q", "")[:100], "vista": vista}


def _list(f: dict):
    db = instance().db
    if f["vista"] == "sin_acceso":
        rows = service.inactive_users(db, INACTIVE_DAYS)
        return [u for u in rows if not f["perfil"] or u.role == f["perfil"]]
    active = {"activos": True, "inactivos": False, "todos": None}[f["estado"]]
    return service.list_users(db, active=active, role=f["perfil"] or None, text=f["q"])


def _list_context(message: str | None = None) -> dict:
    f = _filters()
    return {"users": _list(f), "f": f, "inactive_days": INACTIVE_DAYS, "message": message}


@bp.get("/")
@admin_required
def index():
    if is_htmx() and request.headers.get("HX-Target") == "user-list":
        return render_template("users/_list.html", **_list_context())
    return render_page("users/index.html", "users/_index_body.html", **_list_context())


@bp.route("/nuevo", methods=["GET", "POST"])
@admin_required
def create():
    if request.method == "GET":
        return render_page("users/form_page.html", "users/_form.html", user=None, form={}, error=None)
    form = request.form
    inst = instance()
    try:
        u = service.create_user(inst.db, form.get("username", ""), form.get("password", ""),
                                form.get("role", ""), form.get("full_name", ""), form.get("email", ""),
                                confirm=form.get("confirm", ""), bcrypt_rounds=inst.settings["security.bcrypt_rounds"])
    except UserError as exc:
        return _form_error(None, str(exc))
    audit("user_create", target=u.username, detail={"role": u.role})
    return _done(f"Usuario '{u.username}' creado.")


def _get(user_id: int):
    if not 0 < user_id <= MAX_ID:
        abort(404)
    try:
        return service.get_user_by_id(instance().db, user_id)
    except UserError:
        abort(404)


@bp.route("/<int:user_id>/editar", methods=["GET", "POST"])
@admin_required
def edit(user_id: int):
    user = _get(user_id)
    if request.method == "GET":
        return render_page("users/form_page.html", "users/_form.html", user=user, form={}, error=None)
    form = request.form
    inst = instance()
    try:
        updated, changed = service.update_user(
            inst.db, user.id, actor_id=g.user.id, role=form.get("role", user.role),
            full_name=form.get("full_name", user.full_name), email=form.get("email", user.email),
            password=form.get("password") or None, confirm=form.get("confirm", ""),
            bcrypt_rounds=inst.settings["security.bcrypt_rounds"])
    except UserError as exc:
        return _form_error(user, str(exc))
    fields = [c for c in changed if c != "password"]
    if fields:
        audit("user_update", target=updated.username, detail={"fields": fields})
    if "password" in changed:
        audit("user_password_change", target=updated.username)
    msg = f"Usuario '{updated.username}' actualizado." if changed else "No hubo cambios."
    return _done(msg)


@bp.post("/<int:user_id>/desactivar")
@admin_required
def deactivate(user_id: int):
    return _set_active(user_id, False)


@bp.post("/<int:user_id>/activar")
@admin_required
def activate(user_id: int):
    return _set_active(user_id, True)


def _set_active(user_id: int, active: bool):
    user = _get(user_id)
    try:
        updated, changed = service.set_active(instance().db, user.id, active)
    except UserError as exc:
        audit("user_activate" if active else "user_deactivate", target=user.username, success=False,
              detail={"error": str(exc)})
        return _done(str(exc), error=True)
    if changed:
        audit("user_activate" if active else "user_deactivate", target=updated.username)
    verb = "reactivado" if active else "desactivado"
    return _done(f"Usuario '{updated.username}' {verb}." if changed else f"'{updated.username}' ya estaba {verb}.")


def _form_error(user, message: str):
    ctx = {"user": user, "form": request.form, "error": message}
    if is_htmx():
        return render_template("users/_form.html", **ctx), 422
    return render_template("users/form_page.html", **ctx), 422


def _done(message: str, error: bool = False):
    """After a change: HTMX gets the refreshed list area; plain forms get a redirect."""
    if is_htmx():
        ctx = _list_context(message)
        ctx["message_error"] = error
        return render_template("users/_index_body.html", **ctx), (409 if error else 200)
    flash(message, "error" if error else "success")
    return redirect_response(url_for("users_admin.index"))
