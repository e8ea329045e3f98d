"""emtp-admin serve: a port check with a clear message, then gunicorn (or Flask's dev server)."""

from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path

from visualizador_emtp.config import ConfigError, Settings
from visualizador_emtp.logging_setup import setup_logging


class PortInUse(Exception):
    pass


class StartupError(Exception):
    pass


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host.strip("[]"), int(port)


def _inode_owners(port: int) -> list[tuple[int, str]]:
    """(pid, command) of processes listening on the port, when /proc lets us see them."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    owners = []
    if not inodes:
        return owners
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    cmd = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                    owners.append((int(pid_dir.name), cmd[:120]))
                    break
        except OSError:
            continue
    return owners


def port_holder_text(port: int) -> str:
    owners = _inode_owners(port)
    if not owners:
        return ""
    return "; lo ocupa " + ", ".join(f"el proceso {pid} ({cmd})" for pid, cmd in owners[:3])


def check_port_free(bind: str) -> None:
    host, port = split_bind(bind)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"El puerto {port} ya está en uso{port_holder_text(port)}. "
                            "Detenga ese proceso o cambie server.bind.") from None
        if exc.errno == errno.EACCES:
            raise PortInUse(f"Sin permiso para usar el puerto {port} (los puertos bajo 1024 requieren privilegios).") from None
        raise PortInUse(f"No se puede usar {bind}: {exc.strerror}.") from None
    finally:
        s.close()


def build_app(settings: Settings):
    from visualizador_emtp.app import create_app
    try:
        return create_app(settings)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None


def run_gunicorn(settings: Settings) -> None:
    from gunicorn.app.base import BaseApplication

    check_port_free(settings["server.bind"])
    app = build_app(settings)  # validates config, secret and database before any worker starts

    def on_starting(server):
        # gunicorn's own messages (worker boot, timeouts) also go to app.log, rotation-safe
        handler = setup_logging(settings.paths.app_log, settings["logging.level"])
        if handler is not None:
            logging.getLogger("gunicorn.error").addHandler(handler)

    def post_fork(server, worker):
        app.extensions["emtp"].db.dispose()  # no connection crosses a fork

    class EmtpGunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", [settings["server.bind"]])
            self.cfg.set("workers", settings["server.workers"])
            self.cfg.set("timeout", settings["server.timeout"])
            self.cfg.set("graceful_timeout", 20)
            self.cfg.set("preload_app", True)
            self.cfg.set("proc_name", "visualizador-emtp")
            self.cfg.set("on_starting", on_starting)
            self.cfg.set("loglevel", settings["logging.level"].lower())
            self.cfg.set("post_fork", post_fork)
            self.cfg.set("forwarded_allow_ips", "127.0.0.1,::1")
            if "control_socket_disable" in self.cfg.settings:  # gunicorn ≥ 27: no socket in $HOME
                self.cfg.set("control_socket_disable", True)
            if Path("/dev/shm").is_dir():
                self.cfg.set("worker_tmp_dir", "/dev/shm")

        def load(self):
            return app

    EmtpGunicorn().run()


def run_dev(settings: Settings) -> None:
    check_port_free(settings["server.bind"])
    host, port = split_bind(settings["server.bind"])
    app = build_app(settings)
    app.run(host=host, port=port, debug=True, use_reloader=True)
