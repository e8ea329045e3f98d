"""Shared fixtures, one per concern. Area-specific fixtures live in each tests/<area>/conftest.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from visualizador_emtp.home import init_home
from visualizador_emtp.instance import Instance
from visualizador_emtp.users import service as users_service

from support import ARTIFACTS, EMTP_ADMIN, TEST_BCRYPT_ROUNDS, write_config  # noqa: F401


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An initialised instance home (config, secret key, users.db at head) in a temp folder."""
    h = tmp_path / "home"
    write_config(h, f"[security]\nbcrypt_rounds = {TEST_BCRYPT_ROUNDS}\n\n[backup]\ndest = \"{tmp_path / 'backups'}\"\n")
    init_home(Instance.load(h), prepare_assets=False)
    return h


@pytest.fixture
def instance(home: Path) -> Instance:
    inst = Instance.load(home)
    yield inst
    inst.db.dispose()


@pytest.fixture
def make_user(instance: Instance):
    """make_user('ana', role='analista', password=...) -> UserView."""

    def _make(username: str, role: str = "analista", password: str = "Clave-segura-1", **kw):
        return users_service.create_user(instance.db, username, password, role,
                                         bcrypt_rounds=int(TEST_BCRYPT_ROUNDS), **kw)

    return _make


@pytest.fixture
def run_cli(home: Path):
    """run_cli('users', 'list', input=None) -> CompletedProcess of the real emtp-admin script."""

    def _run(*args: str, input: str | None = None, env: dict | None = None, check: bool = False,
             timeout: int = 300) -> subprocess.CompletedProcess:
        e = {**os.environ, "EMTP_HOME": str(home), **(env or {})}
        return subprocess.run([EMTP_ADMIN, *args], input=input, capture_output=True, text=True, env=e,
                              check=check, timeout=timeout)

    return _run


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _psql(sql: str) -> None:
    subprocess.run(["su", "postgres", "-c", f"psql -v ON_ERROR_STOP=1 -q -c \"{sql}\""], check=True,
                   capture_output=True, text=True, cwd="/")


@pytest.fixture(scope="session")
def postgres_cluster() -> str:
    """The PostgreSQL server started by .ci/run (started here if it is installed but stopped).

    A missing PostgreSQL is a failure, not a skip: CI installs it.
    """
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True).stdout
    line = out.split("\n")[0].split()
    version, name, status = line[0], line[1], line[3]
    if status != "online":
        subprocess.run(["pg_ctlcluster", version, name, "start"], check=True)
    role = "emtp_test"
    _psql(f"DO \\$\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
          f"CREATE ROLE {role} LOGIN PASSWORD '{role}-pw' CREATEDB; END IF; END \\$\\$;")
    return role


@pytest.fixture
def postgres_url(postgres_cluster: str):
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    import uuid

    db = "emtp_" + uuid.uuid4().hex[:10]
    _psql(f"CREATE DATABASE {db} OWNER {postgres_cluster}")
    yield f"postgresql+psycopg://{postgres_cluster}:{postgres_cluster}-pw@127.0.0.1:5432/{db}"
    _psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
