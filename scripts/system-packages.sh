#!/usr/bin/env bash
# Installs the Debian packages the demo (--demo) or the whole test suite (--test) needs.
# Idempotent: runs apt-get only when something is missing.
set -euo pipefail

DEMO_PKGS=(python3 python3-venv python3-dev gcc unixodbc)
TEST_PKGS=("${DEMO_PKGS[@]}" chromium postgresql odbc-postgresql unixodbc-dev tdsodbc sqlite3 logrotate wrk
           debootstrap systemd-container systemd cron curl ca-certificates openssl procps iproute2 sudo)

case "${1:-}" in
  --demo) wanted=("${DEMO_PKGS[@]}") ;;
  --test) wanted=("${TEST_PKGS[@]}") ;;
  *) echo "uso: $0 --demo|--test" >&2; exit 2 ;;
esac

missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "Faltan paquetes (${missing[*]}) y no hay sudo: ejecute como root." >&2; exit 1; }
  SUDO="sudo"
fi
echo "Instalando paquetes del sistema: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
