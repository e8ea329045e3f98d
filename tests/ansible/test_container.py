"""The Ansible roles converged into a real Debian 12 booted with systemd (systemd-nspawn).

One container for the whole module (the tests run in order and build on each other):
site.yml converges, a second run changes nothing, the service survives a restart, logrotate
rotates while the app keeps logging, the timers are installed and the backup job runs,
upgrade.yml goes N -> N+1 keeping the data, and an upgrade to a build with a broken Alembic
migration rolls back by itself, leaving N+1 serving with the users intact.

Needs root, debootstrap and systemd-container (see scripts/prepare-container.sh); the rootfs
is cached in /var/cache/emtp-ci. About 6-8 minutes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import container as ct  # noqa: E402

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
BIN = Path(sys.executable).parent
HOME = "/opt/apps/visualizador-emtp"
ADMIN_PASSWORD = "Clave-de-prueba-CI-1"
STATE: dict = {}


# ---------------------------------------------------------------- helpers


def _bump(version: str, n: int) -> str:
    major, minor, patch = (version.split(".") + ["0", "0"])[:3]
    patch = re.match(r"\d+", patch).group(0)
    return f"{major}.{minor}.{int(patch) + n}"


def _copy_repo(dest: Path) -> Path:
    """The committed tree (git HEAD): what CI's fresh clone has, and never a half-edited file of
    the working tree. EMTP_CI_WHEEL_FROM=worktree takes the working tree instead."""
    if os.environ.get("EMTP_CI_WHEEL_FROM") != "worktree" and (REPO / ".git").exists():
        dest.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", "HEAD"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        return dest

    def ignore(d, names):
        return {n for n in names if n in {".git", ".venv", "dist", "build", ".cache", "test-artifacts", "__pycache__",
                                          ".pytest_cache", ".hypothesis", "node_modules"}}
    shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)
    return dest


def _alembic_head(versions: Path) -> str:
    revs, downs = set(), set()
    for f in versions.glob("*.py"):
        text = f.read_text()
        revs |= set(re.findall(r"""(?m)^revision\s*=\s*["']([^"']+)["']""", text))
        downs |= set(re.findall(r"""(?m)^down_revision\s*=\s*["']([^"']+)["']""", text))
    heads = revs - downs
    assert len(heads) == 1, heads
    return heads.pop()


def _variant(tmp: Path, name: str, version: str, broken: bool = False) -> Path:
    """A wheel built from a temporary copy of the repo with another version (and a broken migration)."""
    src = _copy_repo(tmp / f"src-{name}")
    py = src / "pyproject.toml"
    py.write_text(re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', py.read_text(), count=1))
    if broken:
        head = _alembic_head(src / "migrations" / "versions")
        (src / "migrations" / "versions" / "9999_ci_broken.py").write_text(f'''"""CI only: a migration that fails half-way.

Revision ID: 9999
Revises: {head}
"""
import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("ci_tabla_rota", sa.Column("id", sa.Integer(), primary_key=True))
    op.execute("UPDATE users SET full_name = 'ROTO'")
    raise RuntimeError("migración rota a propósito (prueba de vuelta atrás)")


def downgrade() -> None:
    op.drop_table("ci_tabla_rota")
''')
    return ct.build_wheel(src, tmp / f"wheels-{name}")


class Ansible:
    def __init__(self, workdir: Path, pid: int, checkout: Path):
        self.workdir = workdir
        inv = {"all": {"children": {"visualizador_emtp": {"hosts": {"emtp-ci": {
            "ansible_connection": "community.docker.nsenter",
            "ansible_nsenter_pid": pid,
            "ansible_python_interpreter": "/usr/bin/python3",
        }}}}}}
        self.inventory = workdir / "inventory.yml"
        self.inventory.write_text(yaml.safe_dump(inv))
        # What a server without Internet needs: no apt cache refresh, dependencies from a
        # local wheelhouse. The rest are the documented defaults.
        self.vars = workdir / "vars.yml"
        self.vars.write_text(yaml.safe_dump({
            "emtp_apt_update_cache": False,
            "emtp_pip_no_index": True,
            "emtp_pip_find_links": ct.WHEELHOUSE_IN_CONTAINER,
            "emtp_admin_password": ADMIN_PASSWORD,
            "emtp_workers": 2,
            "emtp_health_retries": 45,
            "emtp_build_from": str(checkout),
            # published data, as on a real server (the pre-upgrade doctor requires it)
            "emtp_demo_data": True,
            "emtp_demo_data_years": "2024-2025",
        }))
        self.env = {**os.environ,
                    "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
                    "ANSIBLE_COLLECTIONS_PATH": str(ct.ensure_collections()),
                    "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
                    "ANSIBLE_REMOTE_TEMP": "/tmp/.ansible-remote",
                    "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
                    "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
                    "ANSIBLE_CALLBACK_RESULT_FORMAT": "yaml",
                    "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false"}

    def play(self, playbook: str, *extra: str, label: str = "") -> subprocess.CompletedProcess:
        t0 = time.monotonic()
        res = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(self.inventory), "-e", f"@{self.vars}",
                              *extra, playbook], cwd=ANSIBLE, capture_output=True, text=True, env=self.env,
                             timeout=1200)
        log = self.workdir / f"{label or playbook}.log"
        log.write_text(res.stdout + "\n--- stderr ---\n" + res.stderr)
        ct.log(f"{playbook} {label}: rc={res.returncode} in {time.monotonic() - t0:.0f} s (log {log})")
        return res


def recap(out: str) -> dict[str, int]:
    m = re.search(r"^emtp-ci\s*:\s*(.*)$", out, re.M)
    assert m, out[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def tail(res: subprocess.CompletedProcess, n: int = 6000) -> str:
    return res.stdout[-n:] + "\n" + res.stderr[-2000:]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def env():
    # Our own folder, not pytest's tmp_path: another pytest run on the machine may prune its
    # old basetemp folders, and the container's root filesystem lives here. Ansible's output
    # of every run is kept in test-artifacts/ansible/ for CI.
    work = Path(tempfile.mkdtemp(prefix="emtp-ct-", dir="/var/tmp"))
    artifacts = REPO / "test-artifacts" / "ansible"
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    t0 = time.monotonic()
    from visualizador_emtp import __version__  # noqa: F401  (the checkout is importable)
    # A frozen copy of the checkout: site.yml builds its wheel from it (the role's default path,
    # python -m build on the controller) and every build of it gives the same bytes.
    checkout = _copy_repo(work / "src-n")
    wheel_n = ct.build_wheel(checkout, work / "wheels-n")
    version_n = re.match(r"visualizador_emtp-([^-]+)-", wheel_n.name).group(1)
    wheel_n1 = _variant(work, "n1", _bump(version_n, 1))
    wheel_bad = _variant(work, "broken", _bump(version_n, 2), broken=True)
    ct.ensure_wheelhouse(wheel_n, wheel_n1, wheel_bad)
    ct.log(f"wheels {wheel_n.name}, {wheel_n1.name}, {wheel_bad.name} ready in {time.monotonic() - t0:.0f} s")
    with ct.booted(work, artifacts) as box:
        yield {"box": box, "ansible": Ansible(work, box.pid, checkout), "work": work,
               "n": (version_n, wheel_n), "n1": (_bump(version_n, 1), wheel_n1),
               "bad": (_bump(version_n, 2), wheel_bad)}

def http(box, path: str, port: int = 8051) -> tuple[int, str]:
    """GET from inside the container (its own loopback)."""
    res = box.exec(["curl", "-s", "-o", "/dev/stderr", "-w", "%{http_code}", "--max-time", "10",
                    f"http://127.0.0.1:{port}{path}"], check=False)
    return int(res.stdout or 0), res.stderr


def wait_http(box, path: str, status: int = 200, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    last = (0, "")
    while time.monotonic() < deadline:
        last = http(box, path)
        if last[0] == status:
            return last[1]
        time.sleep(1)
    raise AssertionError(f"{path}: {last[0]} {last[1][:500]}")


def admin(box, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return box.exec(["/usr/local/bin/emtp-admin", *args], check=check, **kw)


def use_up_start_limit(box, refuse_one: bool = False) -> None:
    """Use up the unit's start limit (StartLimitBurst=5 in 300 s), as a busy maintenance window can:
    five restarts leave the service running, and any further plain start within 5 minutes is refused.
    With refuse_one, that refusal is shown (a sixth restart fails and leaves the service stopped)."""
    box.exec(["systemctl", "reset-failed", "visualizador-emtp"], check=False)
    for _ in range(5):
        box.exec(["systemctl", "restart", "visualizador-emtp"], timeout=120)
    assert box.exec(["systemctl", "is-active", "visualizador-emtp"]).stdout.strip() == "active"
    if refuse_one:
        res = box.exec(["systemctl", "restart", "visualizador-emtp"], check=False, timeout=120)
        assert res.returncode != 0 and "too often" in res.stderr, res.stderr


def installed_version(box) -> str:
    return box.exec(["readlink", f"{HOME}/venv"]).stdout.strip().rsplit("/", 1)[-1]


# ---------------------------------------------------------------- the tests, in order


def test_site_converges(env):
    res = env["ansible"].play("site.yml", label="site-1")
    assert res.returncode == 0, tail(res)
    r = recap(res.stdout)
    assert r["failed"] == 0 and r["unreachable"] == 0 and r["changed"] > 0
    box = env["box"]
    assert installed_version(box) == env["n"][0]
    # owners and modes from the issue
    stat = box.sh(f"stat -c '%n %U:%G %a' {HOME}/config {HOME}/config/visualizador-emtp.toml "
                  f"{HOME}/config/secret_key {HOME}/data {HOME}/logs /backups/visualizador-emtp").stdout
    assert f"{HOME}/config/visualizador-emtp.toml root:emtp 640" in stat
    assert f"{HOME}/config/secret_key emtp:emtp 600" in stat
    assert f"{HOME}/data emtp:emtp 750" in stat
    assert f"{HOME}/logs emtp:emtp 750" in stat
    assert box.exec(["getent", "passwd", "emtp"]).stdout.strip().endswith(":/usr/sbin/nologin")
    users = admin(box, "users", "list").stdout
    assert re.search(r"(?m)^admin\s+admin\s+activo", users), users
    # the unit installed is the single source, unchanged for the default paths
    assert (box.path("/etc/systemd/system/visualizador-emtp.service").read_text()
            == (REPO / "systemd/visualizador-emtp.service").read_text())
    assert (box.path("/etc/logrotate.d/visualizador-emtp").read_text()
            == (REPO / "logrotate/visualizador-emtp").read_text())
    assert "Exposición de visualizador-emtp.service" in res.stdout
    assert box.sh(f"test -f {HOME}/data/.emtp-demo-cargada", check=False).returncode == 0


def test_second_run_changes_nothing(env):
    res = env["ansible"].play("site.yml", label="site-2")
    assert res.returncode == 0, tail(res)
    r = recap(res.stdout)
    assert r["changed"] == 0, tail(res, 12000)


def test_service_active_and_survives_restart(env):
    box = env["box"]
    assert box.exec(["systemctl", "is-active", "visualizador-emtp"]).stdout.strip() == "active"
    assert box.exec(["systemctl", "is-enabled", "visualizador-emtp"]).stdout.strip() == "enabled"
    pid_before = box.exec(["systemctl", "show", "-p", "MainPID", "--value", "visualizador-emtp"]).stdout.strip()
    box.exec(["systemctl", "restart", "visualizador-emtp"])
    body = wait_http(box, "/healthz")
    assert json.loads(body)["status"] == "ok"
    pid_after = box.exec(["systemctl", "show", "-p", "MainPID", "--value", "visualizador-emtp"]).stdout.strip()
    assert pid_after != pid_before and box.exec(["systemctl", "is-active", "visualizador-emtp"]).stdout.strip() == "active"
    # Restart=on-failure: a killed main process comes back by itself
    box.exec(["systemctl", "kill", "--signal=SIGKILL", "--kill-whom=main", "visualizador-emtp"])
    time.sleep(7)  # RestartSec=5
    wait_http(box, "/healthz")
    # the sandbox is in force on the running process
    show = box.exec(["systemctl", "show", "visualizador-emtp", "-p", "User,NoNewPrivileges,ProtectSystem,PrivateTmp"]).stdout
    assert "User=emtp" in show and "NoNewPrivileges=yes" in show and "ProtectSystem=strict" in show


def test_login_page_answers_on_8051(env):
    body = wait_http(env["box"], "/login")
    assert "<form" in body.lower()


def test_logrotate_rotates_and_app_keeps_logging(env):
    box = env["box"]
    app_log = f"{HOME}/logs/app.log"
    box.sh(f"test -s {app_log} || {{ curl -s -o /dev/null http://127.0.0.1:8051/no-existe; true; }}")
    box.exec(["logrotate", "-f", "/etc/logrotate.d/visualizador-emtp"])
    assert box.sh(f"test -f {app_log}.1 && test -f {app_log}", check=False).returncode == 0, box.sh(f"ls -la {HOME}/logs").stdout
    owner = box.exec(["stat", "-c", "%U:%G %a", app_log]).stdout.strip()
    assert owner == "emtp:emtp 640"
    assert box.exec(["stat", "-c", "%s", app_log]).stdout.strip() == "0"
    # the running app (not a new process) writes to the new file: a failed login is logged
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        box.exec(["curl", "-s", "-o", "/dev/null", "--max-time", "10", "-X", "POST",
                  "-d", "username=nadie&password=incorrecta", "http://127.0.0.1:8051/login"], check=False)
        box.exec(["curl", "-s", "-o", "/dev/null", "--max-time", "10", "http://127.0.0.1:8051/no-existe-404"], check=False)
        if int(box.exec(["stat", "-c", "%s", app_log]).stdout.strip()) > 0:
            break
        time.sleep(1)
    size = int(box.exec(["stat", "-c", "%s", app_log]).stdout.strip())
    assert size > 0, "la aplicación no volvió a escribir en app.log después de la rotación"
    assert box.exec(["systemctl", "is-active", "visualizador-emtp"]).stdout.strip() == "active"
    # the audit chain still verifies across the rotated file
    box.exec(["logrotate", "-f", "/etc/logrotate.d/visualizador-emtp"])
    assert admin(box, "audit", "verify", check=False).returncode == 0


def test_timers_installed_and_backup_job_runs(env):
    box = env["box"]
    timers = box.exec(["systemctl", "list-timers", "--all", "--no-pager"]).stdout
    for job in ("backup", "archive", "refresh", "doctor"):
        assert f"visualizador-emtp-{job}.timer" in timers, timers
        assert box.exec(["systemctl", "is-enabled", f"visualizador-emtp-{job}.timer"]).stdout.strip() == "enabled"
    cal = box.exec(["systemctl", "show", "-p", "TimersCalendar", "--value", "visualizador-emtp-refresh.timer"]).stdout
    assert "Mon *-*-* 02:00:00" in cal, cal
    cal = box.exec(["systemctl", "show", "-p", "TimersCalendar", "--value", "visualizador-emtp-backup.timer"]).stdout
    assert "*-*-* 02:00:00" in cal, cal
    before = set(box.sh("ls /backups/visualizador-emtp").stdout.split())
    res = box.exec(["systemctl", "start", "visualizador-emtp-backup.service"], check=False, timeout=300)
    log = box.path(f"{HOME}/logs/tarea-respaldo.log").read_text()
    assert res.returncode == 0, res.stderr + log + box.exec(["journalctl", "-u", "visualizador-emtp-backup", "--no-pager"]).stdout
    after = set(box.sh("ls /backups/visualizador-emtp").stdout.split())
    assert after - before, (before, after)
    assert log.strip(), "la tarea de respaldo no escribió en logs/tarea-respaldo.log"
    # the backup folder belongs to emtp (the hardened job could write only there)
    new = sorted(after - before)[0]
    assert box.exec(["stat", "-c", "%U", f"/backups/visualizador-emtp/{new}"]).stdout.strip() == "emtp"
    # the doctor job runs too and its report goes to its log; under a real systemd the service,
    # HTTP and port checks pass (the host-side tests can only fake systemctl)
    box.exec(["systemctl", "start", "visualizador-emtp-doctor.service"], check=False, timeout=300)
    report = box.path(f"{HOME}/logs/tarea-doctor.log").read_text()
    for check in ("servicio", "web_login", "healthz", "puerto"):
        assert re.search(rf"^OK\s+{check}\b", report, re.M), report
    # and with the service stopped, doctor names it as a failure (exit code 2)
    box.exec(["systemctl", "stop", "visualizador-emtp"])
    try:
        res = admin(box, "doctor", check=False)
        assert res.returncode == 2 and re.search(r"^FAIL\s+servicio\b", res.stdout, re.M), res.stdout
    finally:
        box.exec(["systemctl", "start", "visualizador-emtp"])
        wait_http(box, "/healthz")


def test_upgrade_n_to_n1_keeps_data(env):
    box = env["box"]
    admin(box, "users", "create", "--role", "analista", "--password-stdin", "ana", input="Clave-de-ana-123\n")
    v1, wheel1 = env["n1"]
    res = env["ansible"].play("upgrade.yml", "-e", f"emtp_wheel={wheel1}", label="upgrade-n1")
    assert res.returncode == 0, tail(res)
    assert installed_version(box) == v1
    assert admin(box, "--version").stdout.strip().endswith(v1)
    assert json.loads(wait_http(box, "/healthz"))["status"] == "ok"
    wait_http(box, "/login")
    users = admin(box, "users", "list").stdout
    assert re.search(r"(?m)^ana\s", users) and re.search(r"(?m)^admin\s", users), users
    mant = box.path(f"{HOME}/logs/MANTENIMIENTO.log").read_text()
    assert f"{env['n'][0]} -> {v1} completada" in mant, mant
    # the previous version stays beside it for a manual rollback
    assert box.sh(f"test -f {HOME}/venvs/{env['n'][0]}/.emtp-instalado", check=False).returncode == 0
    # re-running is safe: nothing to do
    again = env["ansible"].play("upgrade.yml", "-e", f"emtp_wheel={wheel1}", label="upgrade-n1-again")
    assert again.returncode == 0, tail(again)
    assert recap(again.stdout)["changed"] == 0, tail(again, 10000)
    # and site.yml on the upgraded server does not go back to N (it only reports)
    site = env["ansible"].play("site.yml", label="site-after-upgrade")
    assert site.returncode == 0, tail(site)
    assert installed_version(box) == v1
    assert recap(site.stdout)["changed"] == 0, tail(site, 10000)


def test_broken_migration_rolls_back(env):
    box = env["box"]
    v1 = env["n1"][0]
    vbad, wheel_bad = env["bad"]
    revision_before = admin(box, "db", "current").stdout
    res = env["ansible"].play("upgrade.yml", "-e", f"emtp_wheel={wheel_bad}", label="upgrade-broken")
    assert res.returncode != 0, tail(res)
    assert "se volvió a " + v1 in res.stdout, tail(res)
    # the old version serves again, with its users and its database revision
    assert installed_version(box) == v1
    assert box.exec(["systemctl", "is-active", "visualizador-emtp"]).stdout.strip() == "active"
    assert json.loads(wait_http(box, "/healthz"))["status"] == "ok"
    wait_http(box, "/login")
    users = admin(box, "users", "list").stdout
    assert re.search(r"(?m)^ana\s", users) and re.search(r"(?m)^admin\s", users), users
    assert "ROTO" not in box.exec(["sqlite3", f"{HOME}/data/users.db", "select full_name from users"]).stdout
    assert admin(box, "db", "current").stdout == revision_before
    assert box.sh(f"test -e {HOME}/venvs/{vbad}", check=False).returncode != 0
    mant = box.path(f"{HOME}/logs/MANTENIMIENTO.log").read_text()
    assert f"{v1} -> {vbad} FALLIDA en la etapa 'migración'" in mant, mant
    # the pre-upgrade database was put back by emtp-admin restore (previous files set aside)
    assert box.sh(f"ls {HOME}/data | grep -q pre-restore", check=False).returncode == 0


def test_backup_restore_and_doctor_playbooks(env):
    """The on-demand playbooks IT runs by hand: backup.yml, restore.yml (with its safety checks) and
    doctor.yml. The audit log has been rotated by the logrotate test, so the restore also crosses a
    rotation and the chain must still verify."""
    box, ansible = env["box"], env["ansible"]
    res = ansible.play("backup.yml", label="backup")
    assert res.returncode == 0, tail(res)
    name = sorted(re.findall(r"emtp_\d{8}-\d{6}", res.stdout))[-1]
    assert box.sh(f"test -f /backups/visualizador-emtp/{name}/MANIFEST.json", check=False).returncode == 0

    # a change after the backup, and a rotation of the audit log
    admin(box, "users", "create", "--role", "analista", "--password-stdin", "temporal", input="Clave-temporal-1\n")
    box.exec(["logrotate", "-f", "/etc/logrotate.d/visualizador-emtp"])
    admin(box, "maintenance", "log", "después del respaldo")

    # without the confirmation nothing happens and the service keeps running
    refused = ansible.play("restore.yml", "-e", f"emtp_restore_backup={name}", label="restore-unconfirmed")
    assert refused.returncode != 0 and "confirme" in refused.stdout, tail(refused)
    assert re.search(r"(?m)^temporal\s", admin(box, "users", "list").stdout)
    assert box.exec(["systemctl", "is-active", "visualizador-emtp"]).stdout.strip() == "active"

    use_up_start_limit(box, refuse_one=True)
    res = ansible.play("restore.yml", "-e", f"emtp_restore_backup={name}", "-e", "emtp_restore_confirm=true",
                       label="restore")
    assert res.returncode == 0, tail(res)
    users = admin(box, "users", "list").stdout
    assert not re.search(r"(?m)^temporal\s", users) and re.search(r"(?m)^admin\s", users), users
    assert box.exec(["systemctl", "is-active", "visualizador-emtp"]).stdout.strip() == "active"
    wait_http(box, "/login")
    verify = admin(box, "audit", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"Restauración del respaldo {name} (restore.yml)" in box.path(f"{HOME}/logs/MANTENIMIENTO.log").read_text()
    # the files in place before the restore were kept aside, the rotated audit file among them
    aside = box.sh(f"ls {HOME}/data {HOME}/logs | grep pre-restore", check=False).stdout
    assert "users.db.pre-restore-" in aside and "audit.jsonl.1.pre-restore-" in aside, aside

    # the operator's own command under the real systemd: stop, restore, start again, also when the
    # unit is past its start limit
    use_up_start_limit(box)
    again = admin(box, "restore", name, "--yes", "--restart", check=False, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Servicio visualizador-emtp detenido." in again.stdout and "visualizador-emtp iniciado." in again.stdout
    assert box.exec(["systemctl", "is-active", "visualizador-emtp"]).stdout.strip() == "active"
    wait_http(box, "/login")

    res = ansible.play("doctor.yml", label="doctor")
    assert res.returncode == 0, tail(res)
    for check in ("servicio", "healthz", "cadena_auditoria", "ultimo_respaldo"):
        assert re.search(rf"OK\s+{check}\b", res.stdout), tail(res)
