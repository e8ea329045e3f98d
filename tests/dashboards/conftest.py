"""Fixtures for the dashboards' server-side tests: the shared demo home, an in-process app and the
student rows of the published version (the ground truth the dashboards are checked against)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import emtp_env  # noqa: E402
from dash_helpers import login  # noqa: E402


@pytest.fixture(scope="session")
def dash_env():
    env = emtp_env.acquire()
    yield env
    emtp_env.release()


@pytest.fixture(scope="session")
def app(dash_env):
    from visualizador_emtp.app import create_app

    return create_app(home=str(dash_env.home))


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


