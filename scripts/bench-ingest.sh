#!/usr/bin/env bash
# `make bench-ingest`: needs the local infrastructure; starts it if it is not running (and leaves it running).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
bash deploy/local/infra.sh start
"$ROOT/.venv/bin/python" -m maillink_devtools.bench_ingest "$@"
