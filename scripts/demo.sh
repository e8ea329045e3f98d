#!/usr/bin/env bash
# One command for a local demo: system packages, venv, instance in ./instance with demo data,
# an admin with a printed random password, and the server on port 8051.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh --demo
bash scripts/venv.sh

export EMTP_HOME="${EMTP_HOME:-$PWD/instance}"
ADMIN=.venv/bin/emtp-admin
$ADMIN init >/dev/null
CRED="$EMTP_HOME/config/demo_admin.txt"
if [ ! -s "$CRED" ]; then
  PASS="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))')"
  if printf '%s\n' "$PASS" | $ADMIN users create admin --role admin --full-name "Administrador demo" --password-stdin >/dev/null 2>&1; then
    :
  else
    printf '%s\n' "$PASS" | $ADMIN users set-password admin --password-stdin >/dev/null
  fi
  umask 077
  printf 'usuario: admin\ncontraseña: %s\n' "$PASS" > "$CRED"
fi
if [ -z "$(ls -A "$EMTP_HOME/data/processed" 2>/dev/null)" ]; then
  echo "Generando datos de demostración (11 años, ~1,8 millones de filas)…"
  $ADMIN demo-data
fi
BIND="${EMTP_SERVER_BIND:-0.0.0.0:8051}"
echo
echo "=============================================================="
echo " Visualizador EMTP (demo) en http://localhost:${BIND##*:}"
sed 's/^/ /' "$CRED"
echo " Instancia: $EMTP_HOME   (Ctrl+C para detener)"
echo "=============================================================="
exec $ADMIN serve --bind "$BIND"
