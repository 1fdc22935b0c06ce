#!/usr/bin/env bash
# `make bench-matcher`: needs Kafka (starts the local infrastructure if it is not running, and leaves it
# running); the stores it measures (FerretDB v1 on SQLite and on a private PostgreSQL 15) are started on
# their own ports for the run and stopped after it. BENCH_ARGS="--scale 0.1" runs a smaller setup.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
bash deploy/local/infra.sh start
"$ROOT/.venv/bin/python" -m maillink_devtools.bench_matcher "$@"
