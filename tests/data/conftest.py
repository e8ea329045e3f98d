"""Fixtures for the data layer: small demo tables, MINEDUC-like raw files, a PostgreSQL database."""

from __future__ import annotations

import csv
import os
import secrets
import subprocess
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from visualizador_emtp.data import cube as cube_mod
from visualizador_emtp.data import demo

SMALL_YEARS = (2024, 2025)


@lru_cache(maxsize=4)
def demo_tables(years: tuple[int, ...] = SMALL_YEARS, seed: int = 7) -> tuple[pa.Table, ...]:
    return tuple(demo.generate(years, seed))


def demo_table(years=SMALL_YEARS, seed=7) -> pa.Table:
    return pa.concat_tables(demo_tables(tuple(years), seed))


@lru_cache(maxsize=1)
def small_table() -> pa.Table:
    """2024-2025 demo rows of about a quarter of the schools (fast refresh tests)."""
    import pyarrow.compute as pc
    t = demo_table()
    return t.filter(pc.less(t["RBD"], 12000))


def raw_mineduc(table: pa.Table, extra_levels: bool = True, seed: int = 1) -> list[dict]:
    """Rows like the public 'Matrícula por estudiante' CSV: all levels, extra columns."""
    rows = []
    for r in table.to_pylist():
        r = {k: ("" if v is None else v) for k, v in r.items()}
        r["DGV_RBD"] = r["RBD"] % 10
        r["ESTADO_ESTAB"] = 1
        r["NOM_REG_RBD_A"] = "X"
        r["LET_CUR"] = "A"
        rows.append(r)
    if extra_levels:
        rng = np.random.default_rng(seed)
        base = rows[: min(len(rows), 400)]
        for i, r in enumerate(base):
            for change in ({"COD_ENSE": 310, "COD_RAMA": 0, "COD_SEC": 0, "COD_ESPE": 0},       # H-C
                           {"COD_ENSE": 410, "COD_GRADO": 1, "COD_ESPE": 0, "COD_SEC": 0},       # TP 1° medio
                           {"COD_ENSE": 910, "COD_RAMA": 900, "COD_SEC": 910, "COD_ESPE": 91001},  # artistic
                           {"ESTADO_ESTAB": 2},                                                   # in recess
                           {"COD_ENSE": 110, "COD_GRADO": 8, "COD_ESPE": 0, "COD_SEC": 0}):       # básica
                rows.append({**r, **change, "MRUN": int(rng.integers(50_000_000, 60_000_000))})
    return rows


def write_csv(path: Path, rows: list[dict], encoding: str = "utf-8") -> Path:
    cols = list(rows[0].keys())
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, delimiter=";", lineterminator="\r\n")
        w.writeheader()
        w.writerows(rows)
    return path


def write_parquet(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


def current_version(home: Path) -> str | None:
    p = home / "data" / "processed" / "current"
    return os.readlink(p).split("/")[-1] if p.is_symlink() else None


@pytest.fixture
def small_parquet(tmp_path) -> Path:
    return write_parquet(tmp_path / "matricula_demo.parquet", small_table())


@pytest.fixture(autouse=True)
def _fresh_cube_cache():
    cube_mod.clear_cache()
    yield
    cube_mod.clear_cache()


# --- PostgreSQL through ODBC --------------------------------------------------------------------
def _psql(sql: str) -> None:
    subprocess.run(["su", "postgres", "-c", f"psql -v ON_ERROR_STOP=1 -qc \"{sql}\""], check=True,
                   capture_output=True, text=True)


@pytest.fixture(scope="session")
def pg_server():
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
    if "online" not in out:
        subprocess.run(["pg_ctlcluster", "15", "main", "start"], check=True)
        for _ in range(50):
            if "online" in subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout:
                break
            time.sleep(0.2)
    return {"host": "127.0.0.1", "port": 5432}


@pytest.fixture
def pg_db(pg_server):
    """A fresh role + database; yields dict(host, port, database, user, password)."""
    name = "emtp_t_" + secrets.token_hex(4)
    pwd = secrets.token_urlsafe(12)
    _psql(f"CREATE ROLE {name} LOGIN PASSWORD '{pwd}'")
    _psql(f"CREATE DATABASE {name} OWNER {name}")
    yield {**pg_server, "database": name, "user": name, "password": pwd}
    _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _psql(f"DROP ROLE IF EXISTS {name}")
