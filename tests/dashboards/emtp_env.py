"""One instance home with demo data and one real gunicorn for all dashboard tests (server and browser).

Both tests/dashboards/conftest.py and tests/browser/conftest.py import this module; the home and
the server are created once per test session (module-level singleton, reference counted) and
removed when the last user releases them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import requests

from support import EMTP_ADMIN, LiveServer, start_server  # noqa: E402  (tests/ is on sys.path)

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
    server: LiveServer | None = None
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


def _start_server(env: DashEnv) -> None:
    env.server = start_server(env.home, workers=2)
    env.base_url, env.proc = env.server.url, env.server.proc
    env.log = env.home / "logs" / "serve-stdout.log"


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
    if env.server is not None:
        env.server.stop()
    shutil.rmtree(env.home.parent, ignore_errors=True)
