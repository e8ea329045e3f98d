#!/usr/bin/env bash
# One command for the whole test suite: system packages, venv, PostgreSQL, then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not container").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh --test
bash scripts/venv.sh test

# PostgreSQL for the migration, ODBC and refresh tests (no systemd needed)
if command -v pg_lsclusters >/dev/null; then
  read -r ver name _ status _ < <(pg_lsclusters --no-header | head -n1)
  [ "$status" = "online" ] || pg_ctlcluster "$ver" "$name" start
fi

# Debian 12 rootfs (cached in /var/cache/emtp-ci) and the nsenter connection for the Ansible container tests
bash scripts/prepare-container.sh .venv/bin/python

exec .venv/bin/pytest "$@"
