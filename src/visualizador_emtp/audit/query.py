"""Questions about the audit trail, answered from the index (audit/index.py), never by scanning the log.

    f = Filters(period="7d", user="ana", event="login", outcome="fail")
    page = query(inst, f, page=1, page_size=50)      # QueryResult(rows, total, page, pages, page_size)
    s = summary(inst, Filters(period="30d"))          # Summary(logins_ok, logins_failed, …)
    failed_logins_by_user(inst, since)                # {"ana": 7, …}
    for line in csv_lines(inst, f): ...               # the filtered rows as CSV text

Periods are Chile calendar days: "hoy" is today, "7d" today and the 6 days before, "30d" today and
the 29 days before, "custom" the days date_from..date_to inclusive.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterator, Mapping

from visualizador_emtp.audit.index import CHILE_TZ, AuditIndex, IndexBusy, chile_day_bounds, normalize_ts
from visualizador_emtp.fmt import miles

PERIODS = {"hoy": "Hoy", "7d": "Últimos 7 días", "30d": "Últimos 30 días", "custom": "Rango personalizado"}
PERIOD_DAYS = {"hoy": 1, "7d": 7, "30d": 30}
OUTCOMES = {"all": "Todos", "ok": "Exitosos", "fail": "Fallidos"}

# Event codes written to the log → Spanish labels (order = order in the filter select).
EVENT_LABELS = {
    "login": "Inicio de sesión",
    "logout": "Cierre de sesión",
    "lockout": "Bloqueo por intentos fallidos",
    "page_view": "Vista de tablero",
    "export": "Exportación",
    "user_create": "Creación de usuario",
    "user_update": "Modificación de usuario",
    "user_password_change": "Cambio de contraseña",
    "user_activate": "Reactivación de usuario",
    "user_deactivate": "Desactivación de usuario",
    "data_refresh": "Actualización de datos",
    "backup": "Respaldo",
    "restore": "Restauración de respaldo",
    "archive": "Archivo mensual",
    "upgrade": "Actualización de versión",
}
LOGIN_REASONS = {
    "ok": "correcto",
    "unknown_user": "usuario inexistente",
    "bad_password": "contraseña incorrecta",
    "inactive": "usuario desactivado",
    "locked": "usuario bloqueado",
    "lockout": "bloqueo activado",
    "missing": "campos vacíos",
    "invalid": "contraseña nueva no válida",
    "same": "igual a la anterior",
}
DETAIL_KEYS = {
    "reason": "motivo", "page": "página", "format": "formato", "role": "perfil", "fields": "campos",
    "rows": "filas", "version": "versión", "source": "fuente", "file": "archivo", "error": "error",
    "previous": "versión anterior", "dry_run": "simulación", "years": "filas por año", "seed": "semilla",
}
# user fields named in user_update's detail
FIELD_LABELS = {"role": "perfil", "full_name": "nombre", "email": "correo", "password": "contraseña"}
FAILED_ATTEMPTS_ALERT = 5  # "Alerta si hay más de 5 intentos fallidos del mismo usuario"
MAX_PAGE_SIZE = 500
MIN_DATE, MAX_DATE = date(2000, 1, 1), date(2999, 12, 31)


def event_label(code: str) -> str:
    return EVENT_LABELS.get(code, code)


def today_chile() -> date:
    return datetime.now(CHILE_TZ).date()


@dataclass(frozen=True)
class Filters:
    period: str = "7d"                 # hoy | 7d | 30d | custom
    date_from: date | None = None      # custom only, Chile days, inclusive
    date_to: date | None = None
    user: str = ""                     # actor, exact (case-insensitive)
    event: str = ""                    # event code, exact
    outcome: str = "all"               # all | ok | fail
    ip: str = ""                       # exact

    def days(self, today: date | None = None) -> tuple[date, date]:
        """First and last Chile day of the period (inclusive)."""
        today = today or today_chile()
        if self.period == "custom":
            first = self.date_from or MIN_DATE
            last = self.date_to or today
            if first > last:
                first, last = last, first
            return max(first, MIN_DATE), min(last, MAX_DATE)
        n = PERIOD_DAYS.get(self.period, 7)
        return today - timedelta(days=n - 1), today


@dataclass
class AuditRow:
    id: int
    ts: str
    event: str
    actor: str
    success: bool
    ip: str
    record: dict[str, Any] = field(repr=False)

    @property
    def target(self) -> str:
        return str(self.record.get("target") or "")

    @property
    def user_agent(self) -> str:
        return str(self.record.get("user_agent") or "")

    @property
    def detail(self) -> Any:
        return self.record.get("detail")

    @property
    def label(self) -> str:
        return event_label(self.event)

    @property
    def local(self) -> datetime:
        return datetime.fromisoformat(self.ts.replace("Z", "+00:00")).astimezone(CHILE_TZ)

    @property
    def detail_text(self) -> str:
        return describe_detail(self.event, self.detail)


@dataclass
class QueryResult:
    rows: list[AuditRow]
    total: int
    page: int
    pages: int
    page_size: int


@dataclass
class Summary:
    first_day: date
    last_day: date
    total_events: int = 0
    logins_ok: int = 0
    logins_failed: int = 0
    failed_events: int = 0
    distinct_users: int = 0
    top_events: list[tuple[str, int]] = field(default_factory=list)
    top_pages: list[tuple[str, int]] = field(default_factory=list)
    suspicious_users: list[tuple[str, int]] = field(default_factory=list)  # > FAILED_ATTEMPTS_ALERT failed logins


def describe_detail(event: str, detail: Any) -> str:
    """A short Spanish rendering of the detail field (plain text; templates escape it)."""
    if detail in (None, "", {}, []):
        return ""
    if not isinstance(detail, dict):
        return _detail_value(detail)
    parts = []
    for key, value in detail.items():
        if value is None or value == "":
            continue
        if key == "reason" and isinstance(value, str):
            value = ", ".join(LOGIN_REASONS.get(r, r) for r in value.split(","))
        elif key == "fields" and isinstance(value, list):
            value = [FIELD_LABELS.get(v, v) for v in value]
        parts.append(f"{DETAIL_KEYS.get(key, key)}: {_detail_value(value)}")
    return "; ".join(parts)


def _detail_value(value: Any) -> str:
    if isinstance(value, bool):
        return "sí" if value else "no"
    if isinstance(value, int):
        return miles(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_detail_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_detail_value(v) for v in value)
    return str(value)


# -- the SQL behind the filters -----------------------------------------------------------------

def _where_rows(f: Filters, today: date | None) -> tuple[str, list]:
    lo, hi = chile_day_bounds(*f.days(today))
    clauses, params = _filter_clauses(f, ["ts >= ?", "ts < ?"], [lo, hi], with_user=True)
    if f.ip:
        clauses.append("ip = ?")
        params.append(f.ip)
    return " AND ".join(clauses), params


def _where_daily(f: Filters, today: date | None, with_user: bool = True) -> tuple[str, list]:
    first, last = f.days(today)
    clauses, params = _filter_clauses(f, ["day >= ?", "day <= ?"], [first.isoformat(), last.isoformat()],
                                      with_user=with_user)
    return " AND ".join(clauses), params


def _filter_clauses(f: Filters, clauses: list, params: list, with_user: bool) -> tuple[list, list]:
    """The user, event and outcome conditions shared by the row and the daily-summary queries."""
    if f.user and with_user:
        clauses.append("actor = ?")
        params.append(f.user)
    if f.event:
        clauses.append("event = ?")
        params.append(f.event)
    if f.outcome in ("ok", "fail"):
        clauses.append("success = ?")
        params.append(1 if f.outcome == "ok" else 0)
    return clauses, params


def _row(r: tuple) -> AuditRow:
    try:
        rec = json.loads(r[6])
    except ValueError:  # pragma: no cover - only parsed lines are indexed
        rec = {}
    return AuditRow(r[0], r[1], r[2], r[3], bool(r[4]), r[5], rec if isinstance(rec, dict) else {})


INGEST_BUDGET = 3.0  # seconds a page request may spend ingesting a backlog before answering


def _open(inst, refresh: bool, wait: float, budget: float | None = INGEST_BUDGET):
    idx = AuditIndex.for_instance(inst)
    stale = False
    if refresh:
        try:
            stale = idx.refresh(wait=wait, budget=budget).partial
        except IndexBusy:
            stale = True  # another worker is ingesting a large backlog; answer with what is indexed
    return idx.connect(), stale


def count(con, f: Filters, today: date | None = None) -> int:
    if f.ip:
        where, params = _where_rows(f, today)
        return con.execute(f"SELECT count(*) FROM events WHERE {where}", params).fetchone()[0]
    where, params = _where_daily(f, today)
    return con.execute(f"SELECT coalesce(sum(n), 0) FROM daily WHERE {where}", params).fetchone()[0]


def query(inst, filters: Filters | None = None, page: int = 1, page_size: int = 50, *,
          today: date | None = None, refresh: bool = True, wait: float = 5.0, **kw) -> QueryResult:
    """One page of the filtered rows, newest first, and the total. ``page`` past the end gives the last."""
    f = filters or Filters(**kw)
    page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    con, _ = _open(inst, refresh, wait)
    try:
        return _query(con, f, page, page_size, today)
    finally:
        con.close()


def _query(con, f: Filters, page: int, page_size: int, today: date | None) -> QueryResult:
    total = count(con, f, today)
    pages = max(1, -(-total // page_size))
    page = max(1, min(int(page), pages))
    offset = (page - 1) * page_size
    where, params = _where_rows(f, today)
    cols = "id, ts, event, actor, success, ip, raw"
    if offset > total // 2:
        # near the end: walk the index from the other side so the last page is as cheap as the first
        limit = min(page_size, total - offset)
        rev_offset = max(0, total - offset - limit)
        rows = con.execute(f"SELECT {cols} FROM events WHERE {where} ORDER BY ts ASC, id ASC LIMIT ? OFFSET ?",
                           [*params, limit, rev_offset]).fetchall()
        rows.reverse()
    else:
        rows = con.execute(f"SELECT {cols} FROM events WHERE {where} ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?",
                           [*params, page_size, offset]).fetchall()
    return QueryResult([_row(r) for r in rows], total, page, pages, page_size)


def summary(inst, filters: Filters | None = None, *, today: date | None = None, refresh: bool = True,
            wait: float = 5.0, top: int = 5, **kw) -> Summary:
    """Cards for the period (and user, when given); event and outcome filters do not apply here."""
    f = filters or Filters(**kw)
    con, _ = _open(inst, refresh, wait)
    try:
        return _summary(con, f, today, top)
    finally:
        con.close()


def _summary(con, f: Filters, today: date | None, top: int) -> Summary:
    first, last = f.days(today)
    base = Filters(period=f.period, date_from=f.date_from, date_to=f.date_to, user=f.user)
    where, params = _where_daily(base, today)
    s = Summary(first, last)
    s.total_events, s.failed_events, s.logins_ok, s.logins_failed = con.execute(
        f"SELECT coalesce(sum(n), 0), coalesce(sum(CASE WHEN success = 0 THEN n END), 0), "
        f"coalesce(sum(CASE WHEN event = 'login' AND success = 1 THEN n END), 0), "
        f"coalesce(sum(CASE WHEN event = 'login' AND success = 0 THEN n END), 0) "
        f"FROM daily WHERE {where}", params).fetchone()
    s.distinct_users = con.execute(
        f"SELECT count(DISTINCT actor) FROM daily WHERE {where} AND success = 1 AND actor != ''",
        params).fetchone()[0]
    s.top_events = [tuple(r) for r in con.execute(
        f"SELECT event, sum(n) AS c FROM daily WHERE {where} GROUP BY event ORDER BY c DESC, event LIMIT ?",
        [*params, top])]
    s.top_pages = [tuple(r) for r in con.execute(
        f"SELECT page, sum(n) AS c FROM daily WHERE {where} AND event = 'page_view' AND page != '' "
        f"GROUP BY page ORDER BY c DESC, page LIMIT ?", [*params, top])]
    s.suspicious_users = [tuple(r) for r in con.execute(
        f"SELECT actor, sum(n) AS c FROM daily WHERE {where} AND event = 'login' AND success = 0 "
        f"GROUP BY actor HAVING c > ? ORDER BY c DESC, actor", [*params, FAILED_ATTEMPTS_ALERT])]
    return s


def page_data(inst, f: Filters, page: int = 1, page_size: int = 50, *, today: date | None = None,
              wait: float = 5.0) -> tuple[Summary, QueryResult, bool]:
    """Summary and one page with a single refresh and connection (what the Auditoría page needs).
    The last value is True when another process was still ingesting (results may lag)."""
    con, stale = _open(inst, True, wait)
    try:
        return _summary(con, f, today, 5), _query(con, f, page, max(1, min(page_size, MAX_PAGE_SIZE)), today), stale
    finally:
        con.close()


def failed_logins_by_user(inst, since: datetime, refresh: bool = True) -> dict[str, int]:
    """Failed login attempts per attempted username since ``since`` (aware, or naive = UTC)."""
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    lo = normalize_ts(since.astimezone(timezone.utc).isoformat())
    con, _ = _open(inst, refresh, 5.0)
    try:
        return {actor: n for actor, n in con.execute(
            "SELECT actor, count(*) FROM events WHERE event = 'login' AND success = 0 AND ts >= ? "
            "GROUP BY actor ORDER BY actor", (lo,))}
    finally:
        con.close()


def iter_rows(inst, filters: Filters | None = None, *, today: date | None = None, refresh: bool = True,
              batch: int = 5000, **kw) -> Iterator[AuditRow]:
    """Every filtered row, newest first, read in batches (for exports)."""
    f = filters or Filters(**kw)
    con, _ = _open(inst, refresh, 60.0, budget=None)  # an export must be complete
    try:
        where, params = _where_rows(f, today)
        cur = con.execute(f"SELECT id, ts, event, actor, success, ip, raw FROM events WHERE {where} "
                          f"ORDER BY ts DESC, id DESC", params)
        while True:
            chunk = cur.fetchmany(batch)
            if not chunk:
                break
            for r in chunk:
                yield _row(r)
    finally:
        con.close()


CSV_COLUMNS = ("fecha_hora_chile", "ts_utc", "evento", "evento_codigo", "actor", "objetivo", "resultado", "ip",
               "navegador", "detalle", "detalle_json", "hash", "hash_anterior")
_FORMULA = re.compile(r"^[=+\-@\t\r]")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # a cell starting with = + - @ would be a formula in Excel (CSV injection): quote it as text
    return "'" + text if _FORMULA.match(text) else text


def csv_record(row: AuditRow) -> list[str]:
    detail = row.detail
    return [_cell(v) for v in (
        row.local.strftime("%d-%m-%Y %H:%M:%S"), row.ts, row.label, row.event, row.actor, row.target,
        "exitoso" if row.success else "fallido", row.ip, row.user_agent, row.detail_text,
        "" if detail is None else json.dumps(detail, ensure_ascii=False, sort_keys=True),
        row.record.get("hash", ""), row.record.get("prev", ""))]


def csv_lines(inst, filters: Filters | None = None, *, today: date | None = None, refresh: bool = True,
              **kw) -> Iterator[str]:
    """The filtered rows as CSV (';' separated, UTF-8 with BOM so Excel in Chile opens it directly)."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + buf.getvalue()
    for i, row in enumerate(iter_rows(inst, filters, today=today, refresh=refresh, **kw)):
        if i % 500 == 0:
            buf.seek(0)
            buf.truncate()
        writer.writerow(csv_record(row))
        if i % 500 == 499:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    rest = buf.getvalue()
    if rest:
        yield rest


# -- parsing request arguments ------------------------------------------------------------------

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _parse_date(text: str) -> date | None:
    text = (text or "").strip()[:20]
    if not _DATE_RE.match(text):
        return None
    try:
        d = date.fromisoformat(text)
    except ValueError:
        return None
    return d if MIN_DATE <= d <= MAX_DATE else None


def parse_filters(args: Mapping[str, str]) -> tuple[Filters, list[str]]:
    """Filters from query-string values (periodo, desde, hasta, usuario, evento, resultado).
    Bad values are dropped with a Spanish message instead of failing."""
    msgs: list[str] = []
    period = (args.get("periodo") or "7d").strip()
    if period not in PERIODS:
        msgs.append("Período no reconocido: se muestran los últimos 7 días.")
        period = "7d"
    date_from = date_to = None
    if period == "custom":
        raw_from, raw_to = args.get("desde") or "", args.get("hasta") or ""
        date_from, date_to = _parse_date(raw_from), _parse_date(raw_to)
        if raw_from.strip() and date_from is None:
            msgs.append("La fecha «desde» no es válida (use el formato AAAA-MM-DD): se ignoró.")
        if raw_to.strip() and date_to is None:
            msgs.append("La fecha «hasta» no es válida (use el formato AAAA-MM-DD): se ignoró.")
        if date_from is None and date_to is None:
            if not msgs:
                msgs.append("Elija las fechas «desde» y «hasta» del rango personalizado; mientras tanto se "
                            "muestran los últimos 7 días.")
            else:
                msgs.append("Se muestran los últimos 7 días.")
            period = "7d"
        elif date_from and date_to and date_from > date_to:
            msgs.append("La fecha «desde» era posterior a «hasta»: se intercambiaron.")
            date_from, date_to = date_to, date_from
    user = (args.get("usuario") or "").strip()
    if user and (len(user) > 200 or _CONTROL_RE.search(user)):
        msgs.append("El usuario indicado no es válido: se ignoró ese filtro.")
        user = ""
    event = (args.get("evento") or "").strip()
    if event and event not in EVENT_LABELS:
        msgs.append("El evento indicado no existe: se muestran todos los eventos.")
        event = ""
    outcome = (args.get("resultado") or "all").strip()
    if outcome not in OUTCOMES:
        msgs.append("Resultado no reconocido: se muestran todos.")
        outcome = "all"
    return Filters(period, date_from, date_to, user, event, outcome), msgs


def filters_to_args(f: Filters) -> dict[str, str]:
    """The query-string form of filters (for links: pager, CSV)."""
    args = {"periodo": f.period}
    if f.period == "custom":
        if f.date_from:
            args["desde"] = f.date_from.isoformat()
        if f.date_to:
            args["hasta"] = f.date_to.isoformat()
    if f.user:
        args["usuario"] = f.user
    if f.event:
        args["evento"] = f.event
    if f.outcome != "all":
        args["resultado"] = f.outcome
    return args
