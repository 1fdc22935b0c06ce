#!/usr/bin/env bash
# The MongoDB-wire-compatible store. In order of preference:
#   1. MONGODB_URL is set      -> use it, start nothing;
#   2. `mongod` is on PATH     -> run a private mongod;
#   3. otherwise               -> FerretDB v1 (SQLite backend), built from its Go module.
# Usage: store.sh install|start|stop|status|url
source "$(dirname "$0")/lib.sh"

FERRET_VERSION=v1.24.2
# The cached binary is named after its sources, so a change to the wrapper rebuilds it.
WRAPPER_REV=$(cat "$ROOT"/deploy/local/ferretdb/{main.go,go.mod,go.sum} | sha256sum | cut -c1-12)
FERRET_BIN="$CACHE_DIR/ferretdb-$FERRET_VERSION-$WRAPPER_REV"
DATA="$RUN_DIR/store"
PIDFILE="$RUN_DIR/store.pid"

url() { echo "${MONGODB_URL:-mongodb://127.0.0.1:$MONGO_PORT/}"; }

install() {
  [ -n "${MONGODB_URL:-}" ] && return 0
  command -v mongod >/dev/null && return 0
  [ -x "$FERRET_BIN" ] && return 0
  command -v go >/dev/null || die "Go is required to build FerretDB"
  log "building FerretDB $FERRET_VERSION into $FERRET_BIN (first time only)"
  (cd "$ROOT/deploy/local/ferretdb" && GOFLAGS=-mod=mod go build -o "$FERRET_BIN.tmp" . ) \
    && mv "$FERRET_BIN.tmp" "$FERRET_BIN"
}

ready() {
  "$VENV/bin/python" -c "import sys, pymongo; pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=2000).admin.command('ping')" "$(url)"
}

ready_or_dead() { alive_or_explain "$PIDFILE" "$DATA/store.log" store; ready; }

start() {
  install
  if [ -n "${MONGODB_URL:-}" ]; then wait_until 30 "store at MONGODB_URL" ready; log "using MONGODB_URL"; return 0; fi
  if pid_alive "$PIDFILE"; then wait_until 60 store ready; log "already running on 127.0.0.1:$MONGO_PORT"; return 0; fi
  port_open "$MONGO_PORT" && die "port $MONGO_PORT is taken by another process; set MONGO_PORT or MONGODB_URL"
  mkdir -p "$DATA"
  if command -v mongod >/dev/null; then
    log "starting mongod on 127.0.0.1:$MONGO_PORT"
    setsid nohup mongod --bind_ip 127.0.0.1 --port "$MONGO_PORT" --dbpath "$DATA" </dev/null >"$DATA/store.log" 2>&1 4>&- &
  else
    log "starting FerretDB (SQLite) on 127.0.0.1:$MONGO_PORT"
    setsid nohup "$FERRET_BIN" -listen "127.0.0.1:$MONGO_PORT" -data "$DATA/sqlite" </dev/null >"$DATA/store.log" 2>&1 4>&- &
  fi
  echo $! > "$PIDFILE"
  wait_until 60 store ready_or_dead
  log "ready"
}

stop() { [ -n "${MONGODB_URL:-}" ] || stop_pidfile "$PIDFILE" store; }

status() { ready 2>/dev/null && echo "store: running at $(url)" || echo "store: stopped"; }

"${1:-start}"
