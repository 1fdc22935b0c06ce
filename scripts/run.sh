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
# A local development key set for tokens (`maillink token` signs with it; services read the public half),
# and the secret that signs raw-message links (shared by matcher and ingest).
"$VENV/bin/maillink" --keys "$RUN_DIR/auth" keys init >/dev/null
export MAILLINK_JWKS_FILE="${MAILLINK_JWKS_FILE:-$RUN_DIR/auth/jwks.json}"
LINK_FILE="$RUN_DIR/auth/link.key"
[ -s "$LINK_FILE" ] || (umask 077; "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))' > "$LINK_FILE")
export MAILLINK_LINK_KEYS="${MAILLINK_LINK_KEYS:-$(cat "$LINK_FILE")}"
# The tracker's token key (kid:date:secret), shared by outbound (mints) and tracker (verifies).
TRACKING_FILE="$RUN_DIR/auth/tracking.key"
[ -s "$TRACKING_FILE" ] || (umask 077; "$VENV/bin/python" -c 'import secrets; print("1:2020-01-01:" + secrets.token_urlsafe(32))' > "$TRACKING_FILE")
export MAILLINK_TRACKING_KEYS="${MAILLINK_TRACKING_KEYS:-$(cat "$TRACKING_FILE")}"
# The tracker's lean public listener (/o/ and /c/ only) is what mail links point at.
export TRACKER_PUBLIC_PORT="${TRACKER_PUBLIC_PORT:-8113}"
export TRACKER_PUBLIC_HOST="${TRACKER_PUBLIC_HOST:-127.0.0.1}"
export OUTBOUND_TRACKER_BASE_URL="${OUTBOUND_TRACKER_BASE_URL:-http://127.0.0.1:$TRACKER_PUBLIC_PORT}"
stop_all() { trap - EXIT INT TERM; bash "$ROOT/scripts/stop.sh"; }
trap stop_all EXIT INT TERM
"$VENV/bin/python" -m maillink_devtools.demo
