"""GET /healthz: JSON for monitoring, no login, no secrets."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify

from visualizador_emtp import __version__, migrate
from visualizador_emtp.auth.permissions import public
from visualizador_emtp.web.context import instance

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


def data_status(inst) -> dict:
    """Data present / date / source, from the data layer when it is installed."""
    try:
        from visualizador_emtp.data.cube import DataUnavailable, get_cube
    except ImportError:
        return {"status": "missing", "message": "Capa de datos no disponible."}
    try:
        cube = get_cube(inst.paths.processed_dir)
    except DataUnavailable as exc:
        return {"status": "error", "message": str(exc)}
    if cube is None:
        return {"status": "missing", "message": "Sin datos publicados: ejecute 'emtp-admin refresh' o 'emtp-admin demo-data'."}
    manifest = getattr(cube, "manifest", {}) or {}
    return {"status": "ok", "refreshed_at": manifest.get("created_at"), "source": manifest.get("source"),
            "years": list(getattr(cube, "years", []) or [])}


@bp.get("/healthz")
@public
def healthz():
    inst = instance()
    body = {"version": __version__}
    healthy = True
    try:
        revision = migrate.current_revision(inst.db.engine)
        at_head = revision == migrate.head_revision()
        body["database"] = {"reachable": True, "at_head": at_head, "revision": revision}
        healthy = at_head
        problem = inst.db.file_problem()
        if problem:
            log.error("healthz: %s", problem)
            body["database"] = {"reachable": False, "at_head": at_head, "problem": problem}
            healthy = False
    except Exception as exc:
        log.error("healthz: base de datos inaccesible: %s", exc)
        body["database"] = {"reachable": False, "at_head": False}
        healthy = False
    body["data"] = data_status(inst)
    if body["data"]["status"] == "error":
        healthy = False
    body["status"] = "ok" if healthy else "error"
    resp = jsonify(body)
    resp.status_code = 200 if healthy else 503
    resp.headers["Cache-Control"] = "no-store"
    return resp
