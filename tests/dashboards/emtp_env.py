"""One instance home with demo data and one real gunicorn for all dashboard tests (server and browser).

Both tests/dashboards/conftest.py and tests/browser/conftest.py import this module; the home and
the server are created once per test session (module-level singleton, reference counted) and
removed when the last user releases them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

VENV_BIN = Path(sys.executable).parent
EMTP_ADMIN = str(VENV_BIN / "emtp-admin")
YEARS = "2023-2025"
USER, PASSWORD = "ana", "Clave-segura-1"
ADMIN_USER = "admin1"


@dataclass
class DashEnv:
    home: Path
    base_url: str = ""
    proc: subprocess.Popen | None = None
    users: int = 0
    log: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def processed(self) -> Path:
        return self.home / "data" / "processed"

    def env(self) -> dict:
        return {**os.environ, "EMTP_HOME": str(self.home)}

    def cli(self, *args: str, input: str | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
        r = subprocess.run([EMTP_ADMIN, *args], input=input, capture_output=True, text=True, env=self.env(),
                           timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"emtp-admin {' '.join(args)} falló ({r.returncode}): {r.stdout}\n{r.stderr}")
        return r

    def login(self, username: str = USER, password: str = PASSWORD) -> requests.Session:
        s = requests.Session()
        r = s.get(self.base_url + "/login", timeout=10)
        token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
        r = s.post(self.base_url + "/login", data={"username": username, "password": password, "csrf_token": token},
                   timeout=10, allow_redirects=False)
        assert r.status_code in (302, 303), r.text[:500]
        return s


_ENV: DashEnv | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(env: DashEnv) -> None:
    port = free_port()
    env.base_url = f"http://127.0.0.1:{port}"
    env.log = env.home / "logs" / "serve-test.out"
    out = open(env.log, "w")
    env.proc = subprocess.Popen([EMTP_ADMIN, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
                                env=env.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if env.proc.poll() is not None:
            raise RuntimeError(f"gunicorn terminó al iniciar: {env.log.read_text()[-3000:]}")
        try:
            if requests.get(env.base_url + "/healthz", timeout=1).status_code in (200, 503):
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn no respondió /healthz en 60 s")


def acquire() -> DashEnv:
    global _ENV
    if _ENV is None:
        home = Path(tempfile.mkdtemp(prefix="emtp-dash-")) / "home"
        (home / "config").mkdir(parents=True)
        (home / "config" / "visualizador-emtp.toml").write_text(
            "[security]\nbcrypt_rounds = 4\nlockout_max_failures = 1000\n", encoding="utf-8")
        env = DashEnv(home)
        env.cli("init")
        env.cli("demo-data", "--years", YEARS)
        env.cli("users", "create", "--role", "analista", USER, "--password-stdin", input=PASSWORD + "\n")
        env.cli("users", "create", "--role", "admin", ADMIN_USER, "--password-stdin", input=PASSWORD + "\n")
        _start_server(env)
        _ENV = env
    _ENV.users += 1
    return _ENV


def release() -> None:
    global _ENV
    if _ENV is None:
        return
    _ENV.users -= 1
    if _ENV.users > 0:
        return
    env, _ENV = _ENV, None
    if env.proc is not None and env.proc.poll() is None:
        os.killpg(env.proc.pid, signal.SIGTERM)
        try:
            env.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(env.proc.pid, signal.SIGKILL)
            env.proc.wait(timeout=10)
    shutil.rmtree(env.home.parent, ignore_errors=True)
