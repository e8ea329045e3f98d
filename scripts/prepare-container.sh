#!/usr/bin/env bash
# Prepares what the Ansible container tests (tests/ansible/test_container.py) need:
#   - Debian packages: debootstrap, systemd-container (systemd-nspawn), systemd (systemd-analyze)
#   - a cached Debian 12 rootfs in /var/cache/emtp-ci/rootfs-bookworm (debootstrap, ~80 s the
#     first time, reused afterwards)
#   - community.docker (nsenter connection) extracted from the 'ansible' wheel on PyPI
# Idempotent; a second run takes about a second.
# Usage: bash scripts/prepare-container.sh [PYTHON]   (PYTHON defaults to .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v nsenter >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
"$PY" -c "import build, yaml" 2>/dev/null || "$PY" -m pip install -q build pyyaml
"$PY" tests/ansible/container.py prepare
