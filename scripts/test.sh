#!/usr/bin/env bash
# `make test`: install what is missing, start what the tests need, run every test.
# Infrastructure that was already running (e.g. under `make run`) is reused and left running;
# what this script started, it stops again.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
started=0
# Capture first: `status | grep -q` under pipefail fails when grep exits early (SIGPIPE).
status=$(bash deploy/local/infra.sh status)
if [[ "$status" != *stopped* ]]; then
  echo "[test] reusing the running infrastructure" >&2
else
  bash deploy/local/infra.sh start
  started=1
fi
cleanup() { [ $started = 1 ] && bash deploy/local/infra.sh stop || true; }
trap cleanup EXIT
# The store wrapper's own tests (Go), then every Python test.
(cd "$ROOT/deploy/local/ferretdb" && GOFLAGS=-mod=mod go test ./...)
"$ROOT/.venv/bin/python" -m pytest "${@:-tests}" -p no:cacheprovider
