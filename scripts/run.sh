#!/usr/bin/env bash
# `make run`: start the infrastructure and all five services, seed the demo, show it working.
# Ctrl-C stops everything (services, then infrastructure).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source deploy/local/lib.sh
bash deploy/local/infra.sh start
KEY_FILE="$RUN_DIR/credentials.key"
# The demo's credentials key lives in .run/ (git-ignored); production passes its own secret.
[ -s "$KEY_FILE" ] || "$VENV/bin/python" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' > "$KEY_FILE"
chmod 600 "$KEY_FILE"
export MAILLINK_CREDENTIALS_KEY="${MAILLINK_CREDENTIALS_KEY:-$(cat "$KEY_FILE")}"
stop_all() { trap - EXIT INT TERM; bash "$ROOT/scripts/stop.sh"; }
trap stop_all EXIT INT TERM
"$VENV/bin/python" -m maillink_devtools.demo
