#!/usr/bin/env bash
# `make stop`: stop maillink services left running, then the local infrastructure.
source "$(dirname "$0")/../deploy/local/lib.sh"
for pidfile in "$RUN_DIR"/services/*.pid; do
  [ -e "$pidfile" ] && stop_pidfile "$pidfile" "$(basename "$pidfile" .pid)"
done
bash "$ROOT/deploy/local/infra.sh" stop
