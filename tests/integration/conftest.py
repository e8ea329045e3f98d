from __future__ import annotations

import pytest

from support import start_server, write_config
from visualizador_emtp.home import init_home
from visualizador_emtp.instance import Instance
from visualizador_emtp.users import service

ADMIN = ("jefa", "Clave-admin-123")
ANALYST = ("analista1", "Clave-analista-1")


def publish_demo_data(home, years: str = "2024-2025") -> None:
    import os
    import subprocess

    from support import EMTP_ADMIN
    subprocess.run([EMTP_ADMIN, "demo-data", "--years", years], env={**os.environ, "EMTP_HOME": str(home)},
                   check=True, capture_output=True, timeout=300)


def make_home(tmp_path_factory, name: str, extra: str = "") -> Instance:
    h = tmp_path_factory.mktemp(name) / "home"
    write_config(h, "[security]\nbcrypt_rounds = 4\n" + extra)
    inst = Instance.load(h)
    init_home(inst, prepare_assets=False)
    service.create_user(inst.db, ADMIN[0], ADMIN[1], "admin", "Jefa de Unidad", "jefa@mineduc.cl", bcrypt_rounds=4)
    service.create_user(inst.db, ANALYST[0], ANALYST[1], "analista", "Ana Lista", bcrypt_rounds=4)
    return inst


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A real gunicorn with 2 workers, trusting one proxy hop so tests can vary the client IP."""
    inst = make_home(tmp_path_factory, "live", "\n[server]\ntrusted_proxies = 1\n")
    server = start_server(inst.home, workers=2)
    server.instance = inst
    yield server
    server.stop()
    inst.db.dispose()
