"""Helpers for tests that talk to a real gunicorn: start/stop a server, a logged-in HTTP client."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
EMTP_ADMIN = str(Path(__import__("sys").executable).parent / "emtp-admin")
ARTIFACTS = REPO / "test-artifacts"
# Fast hashing in tests that create many users; production default stays 12.
TEST_BCRYPT_ROUNDS = "4"


def write_config(home: Path, text: str) -> None:
    cfg = home / "config" / "visualizador-emtp.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(text, encoding="utf-8")


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    home: Path
    url: str
    proc: subprocess.Popen

    def stop(self) -> None:
        """SIGTERM to the whole process group (master and workers); SIGKILL after 20 s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_server(home: Path, workers: int = 2, env: dict | None = None, timeout: float = 60) -> LiveServer:
    port = free_port()
    e = {**os.environ, "EMTP_HOME": str(home), **(env or {})}
    log = open(home / "logs" / "serve-stdout.log", "ab")
    proc = subprocess.Popen([EMTP_ADMIN, "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
                            env=e, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"emtp-admin serve terminó con código {proc.returncode}: "
                               + (home / "logs" / "serve-stdout.log").read_text(errors="replace")[-2000:])
        try:
            if requests.get(url + "/healthz", timeout=2).status_code in (200, 503):
                return LiveServer(home, url, proc)
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("el servidor no respondió a tiempo")


class WebClient(requests.Session):
    """A browser-like session against a live server."""

    def __init__(self, base_url: str, ip: str | None = None):
        super().__init__()
        self.base_url = base_url
        if ip:  # honoured only when the server trusts one proxy hop
            self.headers["X-Forwarded-For"] = ip

    def request(self, method, url, *a, **kw):
        kw.setdefault("timeout", 30)
        kw.setdefault("allow_redirects", False)
        if url.startswith("/"):
            url = self.base_url + url
        return super().request(method, url, *a, **kw)

    def get(self, url, **kw):  # requests.Session.get would force allow_redirects=True
        kw.setdefault("allow_redirects", False)
        return self.request("GET", url, **kw)

    def csrf(self, path: str = "/login") -> str:
        r = self.get(path)
        m = CSRF_RE.search(r.text)
        assert m, f"no CSRF token on {path} (status {r.status_code})"
        return m.group(1)

    def login(self, username: str, password: str) -> requests.Response:
        token = self.csrf("/login")
        return self.post("/login", data={"username": username, "password": password, "csrf_token": token})

    def token(self) -> str:
        """The CSRF token of the current (logged-in) session, read from any page."""
        r = self.get("/cuenta")
        m = CSRF_RE.search(r.text)
        assert m, "no CSRF token on /cuenta"
        return m.group(1)
