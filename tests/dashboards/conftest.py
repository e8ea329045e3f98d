"""Fixtures for the dashboards' server-side tests: the shared demo home, an in-process app and the
student rows of the published version (the ground truth the dashboards are checked against)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import emtp_env  # noqa: E402


@pytest.fixture(scope="session")
def dash_env():
    env = emtp_env.acquire()
    yield env
    emtp_env.release()


@pytest.fixture(scope="session")
def app(dash_env):
    from visualizador_emtp.app import create_app

    return create_app(home=str(dash_env.home))


def login(client, username=emtp_env.USER, password=emtp_env.PASSWORD):
    r = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.get_data(as_text=True)).group(1)
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    return client


@pytest.fixture(scope="session")
def client(app):
    return login(app.test_client())


@pytest.fixture(scope="session")
def students(dash_env) -> pa.Table:
    """Every student row of the published version, plus TIPO (1 jóvenes, 2 adultos)."""
    cur = dash_env.processed / "current"
    manifest = json.loads((cur / "manifest.json").read_text())
    tables = [pq.read_table(cur / info["file"]) for _, info in sorted(manifest["years"].items())]
    t = pa.concat_tables(tables)
    ense = t.column("COD_ENSE").to_numpy()
    return t.append_column("TIPO", pa.array(np.where(ense % 100 == 63, 2, 1).astype(np.int8)))


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
