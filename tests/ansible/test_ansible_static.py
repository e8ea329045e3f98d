"""Static checks of the deployment files: linters, syntax, single sources, hardening score.

Fast (about 20 s): no container. The real converge is in test_container.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
BIN = Path(sys.executable).parent
PLAYBOOKS = ["site.yml", "upgrade.yml", "backup.yml", "restore.yml", "doctor.yml"]
UNITS = sorted((REPO / "systemd").glob("*.service"))


def _run(argv, cwd=ANSIBLE, **kw):
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "NO_COLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(REPO / ".cache" / "ansible-tmp")}
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, timeout=300, **kw)


def test_yamllint_clean():
    res = _run([str(BIN / "yamllint"), "-s", "-c", ".yamllint", "."])
    assert res.returncode == 0, res.stdout + res.stderr


def test_ansible_lint_production_profile():
    res = _run([str(BIN / "ansible-lint"), "--profile", "production", "--offline", "--nocolor"])
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in res.stderr + res.stdout


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbook_syntax(playbook):
    res = _run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory/ejemplo/hosts.yml", playbook])
    assert res.returncode == 0, res.stdout + res.stderr


def _role_defaults() -> dict[str, list[str]]:
    out = {}
    for f in sorted(ANSIBLE.glob("roles/*/defaults/main.yml")):
        out[f.parent.parent.name] = list((yaml.safe_load(f.read_text()) or {}).keys())
    return out


def test_role_variables_prefixed_and_commented():
    for role, names in _role_defaults().items():
        text = (ANSIBLE / "roles" / role / "defaults" / "main.yml").read_text().splitlines()
        for name in names:
            assert name.startswith("emtp_"), f"{role}: {name} sin prefijo emtp_"
            assert name.startswith(role + "_") or role == "emtp" or name == "emtp_proxy_enabled", (role, name)
            i = next(n for n, line in enumerate(text) if line.startswith(name + ":"))
            above = [line for line in text[:i] if line.strip()]
            assert above and above[-1].lstrip().startswith("#") or text[i - 1].startswith(("emtp_", "#")), (
                f"{role}: {name} sin comentario")


def test_group_vars_document_every_variable():
    gv = (ANSIBLE / "inventory/ejemplo/group_vars/visualizador_emtp/main.yml").read_text()
    documented = set(yaml.safe_load(gv).keys())
    for role, names in _role_defaults().items():
        missing = set(names) - documented
        assert not missing, f"group_vars no documenta {sorted(missing)} (rol {role})"


def test_unit_and_logrotate_files_have_one_source():
    """systemd/ and logrotate/ are the only copies; the roles read them from there."""
    for pattern in ("*.service", "*.timer", "visualizador-emtp"):
        copies = [p for p in ANSIBLE.rglob(pattern) if p.is_file()]
        assert not copies, f"copias fuera de systemd/ o logrotate/: {copies}"
    tasks = "\n".join(p.read_text() for p in ANSIBLE.rglob("tasks/*.yml"))
    assert "/systemd/visualizador-emtp.service" in tasks
    assert "/logrotate/visualizador-emtp" in tasks
    assert "'/systemd/visualizador-emtp-' ~ item.0.name" in tasks
    assert "/systemd/visualizador-emtp.sudoers" in tasks


def test_sudo_rule_is_valid_and_narrow():
    """The service user may stop, start and reset-failed its own unit, and nothing else."""
    rule = REPO / "systemd" / "visualizador-emtp.sudoers"
    exe = shutil.which("visudo")
    assert exe, "visudo (paquete sudo) es necesario para esta prueba"
    res = subprocess.run([exe, "-cf", str(rule)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = [line for line in rule.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == 1
    user, commands = lines[0].split(" NOPASSWD: ")
    assert user == "emtp ALL=(root)"
    assert [c.strip() for c in commands.split(",")] == [
        f"/usr/bin/systemctl {action} visualizador-emtp" for action in ("stop", "start", "reset-failed")]


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_systemd_exposure_score_at_most_2(unit):
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze (paquete systemd) es necesario para esta prueba"
    res = subprocess.run([exe, "security", "--offline=true", "--no-pager", str(unit)], capture_output=True,
                         text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", res.stdout)
    assert m, res.stdout + res.stderr
    assert float(m.group(1)) <= 2.0, res.stdout


def test_unit_runs_emtp_admin_serve_hardened():
    text = (REPO / "systemd" / "visualizador-emtp.service").read_text()
    for line in ("User=emtp", "ExecStart=/opt/apps/visualizador-emtp/venv/bin/emtp-admin serve",
                 "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                 "ProtectHome=yes", "CapabilityBoundingSet=\n",
                 "ReadWritePaths=/opt/apps/visualizador-emtp/data /opt/apps/visualizador-emtp/logs -/backups/visualizador-emtp"):
        assert line in text, line


def test_logrotate_policy():
    text = (REPO / "logrotate" / "visualizador-emtp").read_text()
    blocks = dict(re.findall(r"^(/\S+) \{(.*?)^\}", text, re.S | re.M))
    logs = blocks["/opt/apps/visualizador-emtp/logs/*.log"].split()
    audit = blocks["/opt/apps/visualizador-emtp/logs/audit.jsonl"].split()
    for words, period in ((logs, "weekly"), (audit, "monthly")):
        assert period in words
        assert words[words.index("rotate") + 1] == "12"
        for w in ("compress", "delaycompress", "nodateext", "create"):
            assert w in words
        assert "copytruncate" not in words and "dateext" not in words
    # the syntax is checked by logrotate itself inside the container (the role runs logrotate -d)
