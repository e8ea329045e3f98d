"""create_app(settings) — the Flask application factory."""

from __future__ import annotations

import gzip
import importlib
import logging

from flask import Flask, flash, g, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException

from visualizador_emtp import __version__, migrate
from visualizador_emtp.auth import csrf
from visualizador_emtp.auth.login import load_session
from visualizador_emtp.auth.permissions import PUBLIC, access_level, allowed
from visualizador_emtp.config import ConfigError, Settings, load_settings
from visualizador_emtp.instance import Instance
from visualizador_emtp.logging_setup import setup_logging
from visualizador_emtp.web.formatting import register_filters
from visualizador_emtp.web.htmx import HTMX_STATIC, init_htmx, is_htmx, redirect_response

log = logging.getLogger(__name__)

# One blueprint per concern; each module exposes ``bp``.
BLUEPRINT_MODULES = (
    "visualizador_emtp.web.auth",
    "visualizador_emtp.web.health",
    "visualizador_emtp.web.users_admin",
    "visualizador_emtp.web.audit_admin",
    "visualizador_emtp.web.dashboards",
)

# Content-Security-Policy: everything from the app itself, nothing inline but styles.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'; "
       "object-src 'none'")

MESSAGES = {
    400: "La solicitud no es válida.",
    403: "No tiene permiso para ver esta página.",
    404: "La página solicitada no existe.",
    405: "Método no permitido para esta dirección.",
    413: "La solicitud es demasiado grande.",
    429: "Demasiadas solicitudes. Espere un momento.",
    500: "Ocurrió un error interno. El equipo de TI puede revisarlo en logs/app.log.",
}


def create_app(settings: Settings | None = None, home: str | None = None) -> Flask:
    settings = settings or load_settings(home)
    inst = Instance(settings)
    setup_logging(settings.paths.app_log, settings["logging.level"])

    try:
        at_head = migrate.is_at_head(inst.db.engine)
    except Exception as exc:
        raise ConfigError(f"No se pudo abrir la base de datos de usuarios ({exc.__class__.__name__}): "
                          f"revise database.url en {settings.origin_of['database.url']}.") from None
    if not at_head:
        cur = migrate.current_revision(inst.db.engine)
        inst.db.dispose()
        raise ConfigError(f"La base de datos de usuarios está en la revisión {cur or 'vacía'} y esta versión "
                          f"necesita {migrate.head_revision()}: ejecute 'emtp-admin db upgrade'.")
    inst.db.dispose()  # connections are opened lazily in each worker

    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(
        SECRET_KEY=settings.secret_key(),
        SESSION_COOKIE_NAME="emtp_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings["security.cookie_secure"],
        MAX_CONTENT_LENGTH=1024 * 1024,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.extensions["emtp"] = inst
    # static URLs carry ?v=<version>: cache those for a year, unversioned ones for an hour
    app.get_send_file_max_age = lambda filename: 31536000 if request.args.get("v") else 3600
    init_htmx(app)
    register_filters(app)

    for name in BLUEPRINT_MODULES:
        app.register_blueprint(importlib.import_module(name).bp)

    proxies = settings["server.trusted_proxies"]
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    _install_guards(app, inst)
    _install_error_pages(app)

    nav_endpoints = frozenset(app.view_functions)

    @app.context_processor
    def _globals():
        return {
            "current_user": g.get("user"),
            "csrf_token": csrf.get_token,
            "app_version": __version__,
            "htmx_js": HTMX_STATIC,
            "is_htmx": is_htmx(),
            "nav_endpoints": nav_endpoints,
        }

    return app


def _install_guards(app: Flask, inst: Instance) -> None:
    idle = inst.settings["security.session_idle_minutes"]

    @app.before_request
    def _authenticate_and_authorise():
        g.user = None
        token = session.get("sid")
        if token:
            user, reason = load_session(inst.db, token, idle)
            if user is None:
                session.clear()
                if reason == "expired":
                    flash("Su sesión expiró por inactividad. Ingrese nuevamente.", "warning")
            g.user = user

        if request.endpoint == "static":
            return None
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        if view is None:
            return None  # Flask answers 404/405 itself
        level = access_level(view)
        if level is None:
            log.error("Endpoint sin permiso declarado: %s (denegado)", request.endpoint)
            return error_response(403)
        if not allowed(level, g.user):
            if g.user is None and level != PUBLIC:
                if not session.get("_flashes"):
                    flash("Ingrese para continuar.", "info")
                target = request.full_path if request.method == "GET" else request.path
                return redirect_response(url_for("auth.login", next=target.rstrip("?")))
            return error_response(403)
        if request.method not in csrf.SAFE_METHODS and not csrf.is_valid(request):
            log.warning("CSRF rechazado en %s desde %s", request.path, request.remote_addr)
            return error_response(400, "El formulario expiró o no es válido (protección CSRF). "
                                       "Recargue la página e intente nuevamente.")
        return None

    @app.after_request
    def _security_headers(resp):
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        if request.endpoint != "static" and resp.mimetype == "text/html":
            resp.headers.setdefault("Cache-Control", "no-store")
        if is_htmx():
            resp.vary.add("HX-Request")
        return _gzip(resp)


COMPRESSIBLE = {"text/html", "application/json", "text/csv", "image/svg+xml", "text/css", "text/javascript",
                "application/javascript"}


def _gzip(resp):
    """Compress generated pages and fragments (static files are sent as they are)."""
    if (resp.direct_passthrough or resp.is_streamed or resp.status_code < 200 or resp.status_code >= 300
            or resp.mimetype not in COMPRESSIBLE or "Content-Encoding" in resp.headers
            or "gzip" not in request.headers.get("Accept-Encoding", "")):
        return resp
    data = resp.get_data()
    if len(data) < 1024:
        return resp
    resp.set_data(gzip.compress(data, compresslevel=5))
    resp.headers["Content-Encoding"] = "gzip"
    resp.vary.add("Accept-Encoding")
    return resp


def error_response(code: int, message: str | None = None):
    template = "fragments/error.html" if is_htmx() else "error.html"
    return render_template(template, code=code, message=message or MESSAGES.get(code, "Error.")), code


def _install_error_pages(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = exc.code or 500
        return error_response(code, MESSAGES.get(code, exc.description))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("Error no controlado en %s %s", request.method, request.path)
        return error_response(500)
