#!/usr/bin/env bash
# `make chaos`: fault injection with a verdict, on PRIVATE infrastructure (its own run dir and ports),
# because it restarts the broker and the store: it can run beside `make test`'s servers and never
# touches them. Starts Kafka, the store and Dovecot for itself, runs maillink_devtools.chaos, and
# stops what it started (also on Ctrl-C or failure).
# Knobs: CHAOS_MESSAGES (20000), CHAOS_ACCOUNTS (4), CHAOS_WINDOW_S (fault window), CHAOS_SEED.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export MAILLINK_RUN_DIR="${CHAOS_RUN_DIR:-$ROOT/.run-chaos}"
export KAFKA_PORT="${CHAOS_KAFKA_PORT:-12092}" KAFKA_CONTROLLER_PORT="${CHAOS_KAFKA_CONTROLLER_PORT:-12093}"
export KAFKA_SASL_PORT="${CHAOS_KAFKA_SASL_PORT:-12094}" MONGO_PORT="${CHAOS_MONGO_PORT:-27019}"
export IMAP_PORT="${CHAOS_IMAP_PORT:-11143}" IMAPS_PORT="${CHAOS_IMAPS_PORT:-11993}"
# MONGODB_URL would make store.sh use that server instead of starting one; the chaos run owns its store.
unset MONGODB_URL MAILLINK_BLOB_URL MAILLINK_NAMESPACE KAFKA_BOOTSTRAP_SERVERS
mkdir -p "$MAILLINK_RUN_DIR"
blobs="$MAILLINK_RUN_DIR/blobs"
cleanup() {
  trap - EXIT INT TERM
  # The read-only fault is a bind mount over the blob directory; never leave it behind.
  while mountpoint -q "$blobs" 2>/dev/null; do umount "$blobs" || break; done
  # To a log, so the verdict stays the last line printed.
  env -u MONGODB_URL bash deploy/local/infra.sh stop >>"$MAILLINK_RUN_DIR/infra-stop.log" 2>&1 || true
}
trap cleanup EXIT INT TERM
bash deploy/local/infra.sh start
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT" MONGODB_URL="mongodb://127.0.0.1:$MONGO_PORT/"
.venv/bin/python -m maillink_devtools.chaos "$@"
