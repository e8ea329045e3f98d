"""Helpers for the audit tests: a brute-force reference scan of the log files, log writers, web login."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone

from visualizador_emtp.audit.chain import AuditLog, _open_text
from visualizador_emtp.audit.index import CHILE_TZ, normalize_ts

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "Clave-segura-1"


# -- brute force: what the index must agree with -----------------------------------------------

def scan_records(log: AuditLog) -> list[tuple[int, dict]]:
    """Every readable record of every file, oldest file first, with its global position."""
    out = []
    pos = 0
    for p in log.files():
        with _open_text(p) as f:
            for raw in f:
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(rec, dict) or normalize_ts(rec.get("ts")) is None:
                    continue
                out.append((pos, rec))
                pos += 1
    return out


def chile_day(ts: str) -> date:
    return datetime.fromisoformat(normalize_ts(ts).replace("Z", "+00:00")).astimezone(CHILE_TZ).date()


def ascii_fold(text: str) -> str:
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in text)


def brute_filter(records, first: date, last: date, user="", event="", outcome="all"):
    """Records in the period matching the filters, newest first (ties: later in the log first)."""
    keep = []
    for pos, rec in records:
        if not first <= chile_day(rec["ts"]) <= last:
            continue
        if user and ascii_fold(str(rec.get("actor") or "")) != ascii_fold(user):
            continue
        if event and str(rec.get("event") or "") != event:
            continue
        ok = rec.get("success") is True or rec.get("success") == 1
        if outcome == "ok" and not ok or outcome == "fail" and ok:
            continue
        keep.append((pos, rec))
    keep.sort(key=lambda pr: (normalize_ts(pr[1]["ts"]), pr[0]), reverse=True)
    return [rec for _, rec in keep]


# -- writing logs ------------------------------------------------------------------------------

EVENTS = ("login", "logout", "page_view", "export", "user_create", "lockout")
USERS = ("ana", "Beto", "carla", "cli:root", "")


def write_events(log: AuditLog, n: int, start: datetime, step: timedelta, seed: int = 0) -> None:
    """n deterministic events from ``start`` every ``step`` (going back in time when step < 0)."""
    for i in range(n):
        k = (i * 7 + seed) % 97
        event = EVENTS[k % len(EVENTS)]
        detail = {"page": ("resumen", "territorio", "tendencias")[k % 3]} if event in ("page_view", "export") else (
            {"reason": "bad_password"} if event == "login" and k % 4 == 0 else None)
        log.append(event, actor=USERS[k % len(USERS)], target="ana" if k % 5 == 0 else "",
                   success=not (k % 4 == 0), ip=f"10.0.0.{k % 3}", user_agent="pytest", detail=detail,
                   ts=start + step * i)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# -- web -----------------------------------------------------------------------------------------

def login(client, username: str, password: str = PASSWORD):
    page = client.get("/login")
    token = CSRF_RE.search(page.get_data(as_text=True)).group(1)
    resp = client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                       "next": ""})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return resp
