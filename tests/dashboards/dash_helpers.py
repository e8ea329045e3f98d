"""Helpers shared by the dashboards' server tests (imported as a module: every test folder has a conftest)."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.compute as pc

import emtp_env


def login(client, username=emtp_env.USER, password=emtp_env.PASSWORD):
    r = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.get_data(as_text=True)).group(1)
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    return client


SPEC_RE = re.compile(r'data-chart="([\w.]+)"[^>]*>.*?<script type="application/json" class="chart-spec">(.*?)</script>',
                     re.S)


def chart_rows(html: str) -> dict[str, list[dict]]:
    """{"page.chart": rows} of every chart embedded in a page or fragment."""
    return {cid: json.loads(body)["datasets"]["d"] for cid, body in SPEC_RE.findall(html)}


def kpi_values(html: str) -> dict[str, str]:
    return {k: v.strip() for k, v in re.findall(r'id="kpi-(\w+)">.*?<div class="value[^"]*">([^<]*)</div>', html, re.S)}


def parse_cl(text: str) -> float:
    """'173.397' → 173397; '46,7 %' → 46.7; '+3,0 %' → 3.0; '−1,2 %' → -1.2."""
    t = text.replace("\u2212", "-").replace("%", "").replace("\u00a0", "").replace(" ", "").replace(".", "").replace(",", ".")
    return float(t)


def filter_rows(t: pa.Table, cons: dict[str, tuple]) -> pa.Table:
    mask = None
    for col, vals in cons.items():
        m = pc.is_in(t.column(col), value_set=pa.array(list(vals), t.schema.field(col).type))
        mask = m if mask is None else pc.and_(mask, m)
    return t if mask is None else t.filter(mask)


def group_count(t: pa.Table, by: list[str]) -> dict:
    if len(t) == 0:
        return {}
    g = t.group_by(by).aggregate([("MRUN", "count")])
    keys = [g.column(b).to_pylist() for b in by]
    ns = g.column("MRUN_count").to_pylist()
    if len(by) == 1:
        return dict(zip(keys[0], ns))
    return {tuple(k): n for *k, n in zip(*keys, ns)}
