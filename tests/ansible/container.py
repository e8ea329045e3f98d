"""A Debian 12 container booted with a real systemd (systemd-nspawn), for the Ansible tests.

The root filesystem is built once with debootstrap and cached (``/var/cache/emtp-ci`` or
``$EMTP_CI_CACHE``); every test session boots a fresh copy of it with its own private
network namespace (only ``lo``): the service on :8051 inside never collides with anything on
the host, and no traffic leaves the container. Having no network, the container gets the
Python dependencies from a wheelhouse prepared on the host (``pip download``) and
bind-mounted read-only; the system packages the roles need are already in the rootfs.

Ansible drives the container with the ``community.docker.nsenter`` connection plugin (it
enters the namespaces of the container's PID 1). ansible-core does not ship it; the
``ansible`` package on PyPI bundles community.docker, so ``ensure_collections`` downloads that
wheel with pip once and extracts only ``ansible_collections/community/docker`` into the cache.

Command line (used by scripts/prepare-container.sh):
    python tests/ansible/container.py prepare    # rootfs + collections (idempotent)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CACHE = Path(os.environ.get("EMTP_CI_CACHE", "/var/cache/emtp-ci"))
SUITE = "bookworm"
MIRROR = os.environ.get("EMTP_CI_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# Everything the roles install is already here, so the converge needs no network:
# the roles run with emtp_apt_update_cache=false and find the packages present.
PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "python3", "python3-venv", "python3-apt", "sudo",
    "ca-certificates", "logrotate", "unixodbc", "tdsodbc", "sqlite3", "procps", "iproute2",
    "curl", "nginx", "openssl",
]
ROOTFS_STAMP = "emtp-ci-rootfs: " + " ".join(PACKAGES) + " v1"
ROOTFS = CACHE / f"rootfs-{SUITE}"
COLLECTIONS = CACHE / "collections"
ANSIBLE_WHEEL_SPEC = "ansible>=12,<13"  # matches ansible-core 2.19
WHEELHOUSE = CACHE / "wheelhouse"
WHEELHOUSE_IN_CONTAINER = "/var/cache/emtp-wheels"


def log(msg: str) -> None:
    print(f"[container] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


# ---------------------------------------------------------------- cached artifacts


def ensure_rootfs() -> Path:
    stamp = ROOTFS / "etc" / "emtp-ci-rootfs"
    if stamp.is_file() and stamp.read_text().strip() == ROOTFS_STAMP:
        return ROOTFS
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f"rootfs-{SUITE}.building"
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"debootstrap {SUITE} into {tmp} (about 1-2 minutes, cached afterwards)")
    t0 = time.monotonic()
    run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(tmp), MIRROR],
        stdout=subprocess.DEVNULL)
    # A machine-id is created at first boot of every copy; no console login prompts.
    (tmp / "etc" / "machine-id").write_text("")
    (tmp / "etc" / "hostname").write_text("emtp-ci\n")
    for unit in ("console-getty.service", "getty@tty1.service"):
        link = tmp / "etc" / "systemd" / "system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    # nginx is present for the optional proxy role but must not start unless asked to.
    run(["chroot", str(tmp), "systemctl", "disable", "nginx.service"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, check=False)
    (tmp / "etc" / "emtp-ci-rootfs").write_text(ROOTFS_STAMP + "\n")
    shutil.rmtree(ROOTFS, ignore_errors=True)
    tmp.rename(ROOTFS)
    log(f"rootfs ready in {time.monotonic() - t0:.0f} s")
    return ROOTFS


def ensure_collections() -> Path:
    """community.docker (for the nsenter connection) extracted from the `ansible` wheel."""
    target = COLLECTIONS / "ansible_collections" / "community" / "docker"
    if (target / "plugins" / "connection" / "nsenter.py").is_file():
        return COLLECTIONS
    with tempfile.TemporaryDirectory() as d:
        log(f"pip download {ANSIBLE_WHEEL_SPEC} (only community.docker is kept)")
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", d,
             ANSIBLE_WHEEL_SPEC], stdout=subprocess.DEVNULL)
        wheel = next(Path(d).glob("ansible-*.whl"))
        tmp = COLLECTIONS.with_name("collections.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.startswith("ansible_collections/community/docker/"):
                    z.extract(name, tmp)
        shutil.rmtree(COLLECTIONS, ignore_errors=True)
        tmp.rename(COLLECTIONS)
    return COLLECTIONS


def ensure_wheelhouse(*wheels: Path) -> Path:
    """The app wheels' dependencies as wheels, for pip --no-index inside the container."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    for w in wheels:  # one at a time: they are versions of the same package
        run([sys.executable, "-m", "pip", "download", "--only-binary=:all:", "-d", str(WHEELHOUSE), str(w)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for w in wheels:  # the app itself is copied by the role, not taken from the wheelhouse
        (WHEELHOUSE / w.name).unlink(missing_ok=True)
    return WHEELHOUSE


def build_wheel(source: Path, outdir: Path) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(outdir), str(source)],
        stdout=subprocess.DEVNULL)
    wheels = sorted(outdir.glob("visualizador_emtp-*.whl"), key=lambda p: p.stat().st_mtime)
    return wheels[-1]


def _container_init(nspawn_pid: int) -> int | None:
    """The container's PID 1 as seen from the host: the child of systemd-nspawn that lives in
    a PID namespace other than nspawn's own."""
    try:
        own = os.readlink(f"/proc/{nspawn_pid}/ns/pid")
    except OSError:
        return None
    kids = subprocess.run(["pgrep", "-P", str(nspawn_pid)], capture_output=True, text=True).stdout.split()
    for kid in kids:
        try:
            if os.readlink(f"/proc/{kid}/ns/pid") != own:
                return int(kid)
        except OSError:  # it has just exited
            continue
    return None


# ---------------------------------------------------------------- a booted container


class Container:
    """One boot of a fresh copy of the cached rootfs, with systemd as PID 1."""

    def __init__(self, workdir: Path, binds_ro: dict[str, str] | None = None):
        self.name = f"emtp-ci-{uuid.uuid4().hex[:8]}"
        self.root = workdir / "rootfs"
        self.binds_ro = binds_ro or {}
        self.proc: subprocess.Popen | None = None
        self.console = workdir / "console.log"
        self.pid: int | None = None  # the container's init, as seen from the host

    def start(self, timeout: float = 240) -> "Container":
        t0 = time.monotonic()
        run(["cp", "-a", "--reflink=auto", str(ensure_rootfs()), str(self.root)])
        cmd = ["systemd-nspawn", "-D", str(self.root), "-b", "--register=no", "--keep-unit",
               f"--machine={self.name}", "--private-network", "--console=passive"]
        for host, inside in self.binds_ro.items():
            cmd.append(f"--bind-ro={host}:{inside}")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.console.open("wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        state, last = "", ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited: {self.console.read_text(errors='replace')[-2000:]}")
            # Looked up on every round: systemd-nspawn first forks a short-lived "outer child"
            # (same PID namespace as the host) that later clones the container's init and exits;
            # catching the outer child once and keeping it was a race that made slow machines
            # wait for a process that no longer existed.
            self.pid = _container_init(self.proc.pid)
            if self.pid:
                res = self.sh("systemctl is-system-running", check=False, timeout=30)
                state, last = res.stdout.strip(), res.stderr.strip()
                if state in ("running", "degraded"):
                    log(f"{self.name} booted ({state}) in {time.monotonic() - t0:.1f} s, init pid {self.pid}")
                    return self
            time.sleep(0.5)
        diagnosis = self._diagnose()
        console = self.console.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"container did not boot in {timeout} s (init pid {self.pid}, last state "
                           f"{state!r}, stderr {last!r}):\n{diagnosis}\nconsole:\n{console}")

    def _diagnose(self) -> str:
        """What systemd inside is waiting for, to make a boot that never finishes explainable."""
        out = [subprocess.run(["ps", "-o", "pid,ppid,stat,etime,cmd", "--ppid", str(self.proc.pid)],
                              capture_output=True, text=True).stdout]
        if self.pid:
            for script in ("systemctl list-jobs --no-pager", "systemctl --failed --no-pager",
                           "journalctl -b --no-pager -n 60"):
                try:
                    res = self.sh(script, check=False, timeout=20)
                    out.append(f"$ {script}\n{res.stdout}{res.stderr}")
                except subprocess.TimeoutExpired:
                    out.append(f"$ {script}\n(timeout)")
        return "\n".join(out)

    def exec(self, argv: list[str], check: bool = True, input: str | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
        assert self.pid
        res = subprocess.run(["nsenter", "-t", str(self.pid), "-a", "--", *argv], capture_output=True,
                             text=True, input=input, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"{argv} -> {res.returncode}\nstdout: {res.stdout}\nstderr: {res.stderr}")
        return res

    def sh(self, script: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        return self.exec(["/bin/sh", "-c", script], check=check, **kw)

    def path(self, inside: str) -> Path:
        """A path inside the container, seen from the host (its root filesystem is a plain dir)."""
        return self.root / inside.lstrip("/")

    def stop(self) -> None:
        if self.proc is None:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        if self.proc.poll() is None and self.pid:
            subprocess.run(["nsenter", "-t", str(self.pid), "-a", "systemctl", "poweroff"],
                           capture_output=True, timeout=30)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # our own systemd-nspawn process, by its handle
                self.proc.wait(timeout=30)
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[1:2] == ["prepare"]:
        t0 = time.monotonic()
        ensure_rootfs()
        ensure_collections()
        log(f"prepared in {time.monotonic() - t0:.0f} s: {ROOTFS}, {COLLECTIONS}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))


@contextmanager
def booted(work: Path, artifacts: Path) -> Iterator[Container]:
    """A container booted in ``work`` with the wheelhouse bound in; on exit the ``*.log`` files
    of ``work`` (ansible's output) are kept in ``artifacts`` and the container is stopped and
    removed (kept running when EMTP_CI_KEEP_CONTAINER is set, to look inside)."""
    try:
        box = Container(work, binds_ro={str(WHEELHOUSE): WHEELHOUSE_IN_CONTAINER}).start()
    except Exception:
        shutil.rmtree(work, ignore_errors=True)
        raise
    try:
        yield box
    finally:
        for f in work.glob("*.log"):
            shutil.copy(f, artifacts / f.name)
        if os.environ.get("EMTP_CI_KEEP_CONTAINER"):
            log(f"keeping {box.root} (pid {box.pid})")
        else:
            box.stop()
            shutil.rmtree(work, ignore_errors=True)
