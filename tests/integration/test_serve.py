"""emtp-admin serve and start-up failures: one Spanish line, non-zero exit, no traceback."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess

from support import EMTP_ADMIN, free_port, start_server, write_config


def serve(home, *args, timeout=30):
    return subprocess.run([EMTP_ADMIN, "serve", *args], env={**os.environ, "EMTP_HOME": str(home)},
                          capture_output=True, text=True, timeout=timeout)


def test_port_in_use_names_port_and_holder(home):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = free_port()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        r = serve(home, "--bind", f"127.0.0.1:{port}")
    finally:
        holder.close()
    assert r.returncode == 3
    assert f"El puerto {port} ya está en uso" in r.stderr
    assert f"el proceso {os.getpid()}" in r.stderr  # the holder, found through /proc
    assert "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_setting_stops_startup(home):
    write_config(home, '[server]\nworkers = 0\n')
    r = serve(home)
    assert r.returncode == 2
    assert "server.workers" in r.stderr and "visualizador-emtp.toml" in r.stderr
    assert "Traceback" not in r.stderr


def test_database_not_at_head_refuses_to_start(home):
    con = sqlite3.connect(home / "data" / "users.db")
    with con:
        con.execute("UPDATE alembic_version SET version_num = '0001'")
    con.close()
    r = serve(home, "--bind", f"127.0.0.1:{free_port()}")
    assert r.returncode == 2
    assert "emtp-admin db upgrade" in r.stderr and "Traceback" not in r.stderr


def test_missing_secret_key_refuses_to_start(home):
    (home / "config" / "secret_key").unlink()
    r = serve(home, "--bind", f"127.0.0.1:{free_port()}")
    assert r.returncode == 2 and "emtp-admin init" in r.stderr


def test_secret_key_is_shared_by_workers_and_0600(home, make_user):
    import stat
    mode = stat.S_IMODE((home / "config" / "secret_key").stat().st_mode)
    assert mode == 0o600
    make_user("ana", password="Clave-segura-1")
    server = start_server(home, workers=3)
    try:
        from support import WebClient
        c = WebClient(server.url)
        assert c.login("ana", "Clave-segura-1").status_code == 302
        # with per-process keys, some of these requests would land on a worker that rejects the cookie
        for _ in range(30):
            c2 = WebClient(server.url)
            c2.cookies.update(c.cookies)
            assert c2.get("/cuenta").status_code == 200
    finally:
        server.stop()


def test_healthz_503_when_database_is_gone(home):
    server = start_server(home, workers=1)
    try:
        import requests
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
        for f in home.glob("data/users.db*"):
            f.unlink()
        r = requests.get(server.url + "/healthz", timeout=5)
        assert r.status_code == 503 and r.json()["status"] == "error"
    finally:
        server.stop()


def test_app_log_follows_rotation(home, make_user):
    """logrotate's create mode: move app.log away, create a new one; every worker writes to the new file."""
    make_user("rota", password="Clave-segura-1")
    server = start_server(home, workers=2)
    try:
        from support import WebClient
        log = home / "logs" / "app.log"
        for i in range(4):
            WebClient(server.url).login("nadie", "mala-clave-1")
        os.rename(log, home / "logs" / "app.log.1")
        log.touch()
        import threading
        import time

        def pids_in_new_file():
            return {line.split("[pid ")[1].split("]")[0] for line in log.read_text().splitlines()
                    if "CSRF rechazado" in line}

        sent = 0
        deadline = time.monotonic() + 30
        while len(pids_in_new_file()) < 2 and time.monotonic() < deadline:
            # concurrent new connections, so both sync workers have to accept some
            threads = [threading.Thread(target=lambda: WebClient(server.url).post(
                "/login", data={"username": "x", "password": "y"})) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            sent += 8
        text = log.read_text()
        assert text.count("CSRF rechazado") == sent  # no line lost, none left in the rotated file
        assert "CSRF rechazado" not in (home / "logs" / "app.log.1").read_text()
        assert len(pids_in_new_file()) == 2
    finally:
        server.stop()
