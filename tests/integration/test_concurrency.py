"""50 concurrent clients against 4 gunicorn workers: no 5xx, never 'database is locked'."""

from __future__ import annotations

import random
import re
import threading
import time

import pytest

from integration.conftest import ADMIN, ANALYST, make_home, publish_demo_data
from support import WebClient, start_server

CLIENTS = 50
SECONDS = 30


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory):
    inst = make_home(tmp_path_factory, "busy", "lockout_max_failures = 1000\n[server]\ntrusted_proxies = 1\n")
    from visualizador_emtp.users import service
    for i in range(10):
        service.create_user(inst.db, f"editable{i}", "Clave-inicial-1", "analista", bcrypt_rounds=4)
    publish_demo_data(inst.home)
    server = start_server(inst.home, workers=4)
    server.instance = inst
    yield server
    server.stop()


@pytest.mark.slow
def test_mixed_load_has_no_errors(busy_server):
    url = busy_server.url
    read_pages = ["/cuenta", "/admin/usuarios/"]
    probe = WebClient(url, "10.9.0.1")
    assert probe.login(*ADMIN).status_code == 302
    assert probe.get("/resumen").status_code == 200
    read_pages.append("/resumen")
    ids = [int(m) for m in re.findall(r'id="usuario-(\d+)"', probe.get("/admin/usuarios/?q=editable").text)]
    assert len(ids) == 10

    stats = {"requests": 0, "5xx": 0, "errors": [], "logins": 0, "edits": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def worker(n: int) -> None:
        rnd = random.Random(n)
        is_admin = n % 5 == 0
        c = WebClient(url, f"10.8.{n}.1")
        creds = ADMIN if is_admin else ANALYST
        token = None
        while time.monotonic() < deadline:
            try:
                action = rnd.random()
                if token is None or action < 0.1:
                    c.cookies.clear()  # a new browser session
                    r = c.login(*creds)
                    ok = r.status_code == 302
                    token = c.token() if ok else None
                    with lock:
                        stats["logins"] += 1
                elif is_admin and action < 0.45:
                    uid = rnd.choice(ids)
                    r = c.post(f"/admin/usuarios/{uid}/editar",
                               headers={"HX-Request": "true", "X-CSRF-Token": token},
                               data={"role": "analista", "full_name": f"Nombre {n}-{rnd.randint(0, 9999)}",
                                     "email": f"u{uid}@mineduc.cl"})
                    with lock:
                        stats["edits"] += r.status_code == 200
                else:
                    r = c.get(rnd.choice(read_pages if is_admin else read_pages[:1] + read_pages[2:]))
                with lock:
                    stats["requests"] += 1
                    if r.status_code >= 500:
                        stats["5xx"] += 1
                        stats["errors"].append((r.request.method, r.request.url, r.status_code))
            except Exception as exc:  # a refused or reset connection is a failure too
                with lock:
                    stats["errors"].append(repr(exc))
                    stats["5xx"] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert stats["5xx"] == 0, stats["errors"][:5]
    assert stats["requests"] > 500
    assert stats["logins"] >= CLIENTS and stats["edits"] > 20
    log = busy_server.instance.paths.app_log.read_text()
    assert "database is locked" not in log
    assert " ERROR " not in log and " CRITICAL " not in log
