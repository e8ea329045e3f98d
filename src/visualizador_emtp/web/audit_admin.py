"""Auditoría (admin): who did what and when, from the audit index (never a scan of the log).

GET /admin/auditoria/            full page, or the results fragment for HTMX requests
GET /admin/auditoria/export.csv  the filtered rows as CSV (the export itself is audited)

Filters travel in the query string (periodo, desde, hasta, usuario, evento, resultado, pagina), so
every view can be bookmarked; bad values are dropped with a Spanish message, never a 500.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, Response, request, stream_with_context, url_for

from visualizador_emtp.audit import query as q
from visualizador_emtp.auth.permissions import admin_required
from visualizador_emtp.charts.pages import PAGES
from visualizador_emtp.web.context import audit, instance
from visualizador_emtp.fmt import CHILE_TZ
from visualizador_emtp.web.htmx import render_page

log = logging.getLogger(__name__)

bp = Blueprint("audit_admin", __name__, url_prefix="/admin/auditoria")

PAGE_SIZE = 50
MAX_PAGE = 999_999_999


def _page_arg(msgs: list[str]) -> int:
    raw = (request.args.get("pagina") or "1").strip()
    if not raw.isdigit() or len(raw) > 9:
        msgs.append("Número de página no válido: se muestra la primera.")
        return 1
    return max(1, min(int(raw), MAX_PAGE))


def _context() -> dict:
    f, msgs = q.parse_filters(request.args)
    page = _page_arg(msgs)
    summary, result, stale = q.page_data(instance(), f, page, PAGE_SIZE)
    if page > result.pages > 0 and result.total:
        msgs.append(f"La página {page} no existe: se muestra la última ({result.pages}).")
    args = q.filters_to_args(f)
    return {
        "f": f, "args": args, "messages": msgs, "summary": summary, "result": result, "stale": stale,
        "periods": q.PERIODS, "outcomes": q.OUTCOMES, "event_labels": q.EVENT_LABELS,
        "alert_threshold": q.FAILED_ATTEMPTS_ALERT, "page_labels": PAGES,
        "csv_url": url_for("audit_admin.export_csv", **args),
        "page_url": lambda n: url_for("audit_admin.index", **args, pagina=n),
        "first_row": (result.page - 1) * result.page_size + 1,
    }


@bp.get("/")
@admin_required
def index():
    return render_page("audit/index.html", "audit/_results.html", **_context())


@bp.get("/export.csv")
@admin_required
def export_csv():
    f, _ = q.parse_filters(request.args)
    inst = instance()
    audit("export", target="auditoria", detail={"page": "auditoria", "format": "csv"})
    stamp = datetime.now(CHILE_TZ).strftime("%Y%m%d-%H%M")
    body = q.csv_lines(inst, f)
    resp = Response(stream_with_context(body), mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="auditoria-{stamp}.csv"'
    resp.headers["Cache-Control"] = "no-store"
    return resp
