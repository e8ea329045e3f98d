"""Is the web service running? systemd when present, else the configured port and /healthz."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from visualizador_emtp.serving import _inode_owners, split_bind

SERVICE_NAME = "visualizador-emtp"
SYSTEMD_RUN_DIR = Path("/run/systemd/system")


def systemctl_path(systemctl: str | None = None, run_dir: Path | None = None) -> str | None:
    """The systemctl binary when systemd is the running init (not merely installed)."""
    exe = systemctl or shutil.which("systemctl")
    if not exe or not (run_dir or SYSTEMD_RUN_DIR).is_dir():
        return None
    return exe


def systemd_state(exe: str, unit: str = SERVICE_NAME) -> str:
    """'active', 'inactive', 'failed', … as systemctl is-active prints it."""
    try:
        out = subprocess.run([exe, "is-active", unit], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"desconocido ({exc})"
    return (out.stdout.strip() or out.stderr.strip() or "desconocido").splitlines()[0]


def systemctl_action(exe: str, action: str, unit: str = SERVICE_NAME) -> tuple[bool, str]:
    """Stop, start or reset-failed the unit. As root directly; as the service user (what
    'sudo emtp-admin' runs as) through the narrow sudo rule of systemd/visualizador-emtp.sudoers."""
    cmd = [exe, action, unit]
    if os.geteuid() != 0 and shutil.which("sudo"):
        cmd = ["sudo", "-n", *cmd]  # -n: never ask for a password, fail instead
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    if out.returncode != 0 and cmd[0] == "sudo":
        return False, ((out.stderr or out.stdout).strip() + " (falta la regla /etc/sudoers.d/visualizador-emtp "
                       "que instala Ansible, o ejecute la orden como root)")
    return out.returncode == 0, (out.stderr or out.stdout).strip()


def start_service(exe: str, unit: str = SERVICE_NAME) -> tuple[bool, str]:
    """An operator's start after maintenance. The unit limits starts (StartLimitBurst) to stop a
    crash loop; several maintenance steps in a row can reach that limit, and systemd would refuse
    with "start of the service was attempted too often", so the counter is cleared first."""
    systemctl_action(exe, "reset-failed", unit)
    return systemctl_action(exe, "start", unit)


def local_url(bind: str, path: str) -> str:
    host, port = split_bind(bind)
    if host in ("0.0.0.0", "", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


@dataclass
class HttpResult:
    status: int | None  # None: no answer
    body: bytes = b""
    error: str = ""

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None


def http_get(url: str, timeout: float = 5.0) -> HttpResult:
    req = urllib.request.Request(url, headers={"User-Agent": "emtp-admin doctor"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return HttpResult(resp.status, resp.read(65536))
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read(65536)
        except Exception:  # pragma: no cover
            body = b""
        return HttpResult(exc.code, body)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return HttpResult(None, error=str(reason))


def port_owners(port: int) -> list[tuple[int, str]]:
    return _inode_owners(port)


def is_app_command(cmd: str) -> bool:
    """Our web server: 'emtp-admin serve' (gunicorn runs inside it) or a gunicorn process
    titled after the app (proc_name visualizador-emtp, when setproctitle is installed)."""
    return ("emtp-admin" in cmd and " serve" in cmd) or ("gunicorn" in cmd and "visualizador-emtp" in cmd)


@dataclass
class ServiceState:
    running: bool
    how: str       # 'systemd' or 'port'
    detail: str    # Spanish, for messages


def service_state(settings, systemctl: str | None = None, run_dir: Path | None = None) -> ServiceState:
    exe = systemctl_path(systemctl, run_dir)
    if exe:
        state = systemd_state(exe)
        return ServiceState(state in ("active", "activating", "reloading", "deactivating"), "systemd",
                            f"systemctl is-active {SERVICE_NAME}: {state}")
    bind = settings["server.bind"]
    _, port = split_bind(bind)
    owners = port_owners(port)
    if owners:
        pid, cmd = owners[0]
        return ServiceState(True, "port", f"el puerto {port} lo ocupa el proceso {pid} ({cmd})")
    answer = http_get(local_url(bind, "/healthz"), timeout=2)
    if answer.status is not None:
        return ServiceState(True, "port", f"algo responde en {local_url(bind, '/')} (HTTP {answer.status})")
    return ServiceState(False, "port", f"nada escucha en el puerto {port}")
