# Shared helpers for the local infrastructure scripts. Sourced, not run.
# Everything downloaded or built is cached outside the checkout, so a fresh clone on the
# same machine (which is what CI runs) reuses it; everything a run writes (data, logs,
# pid files) lives in the checkout's .run/ folder, which git ignores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE_DIR="${MAILLINK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/maillink}"
RUN_DIR="${MAILLINK_RUN_DIR:-$ROOT/.run}"
VENV="${MAILLINK_VENV:-$ROOT/.venv}"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
MONGO_PORT="${MONGO_PORT:-27017}"
IMAP_PORT="${IMAP_PORT:-10143}"
IMAPS_PORT="${IMAPS_PORT:-10993}"

mkdir -p "$CACHE_DIR" "$RUN_DIR"
# fd 4: the real stderr, for messages from inside commands whose output wait_until hides.
# Daemons are started with 4>&- so they never hold the caller's pipe open.
exec 4>&2

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# pid_alive FILE: true when FILE names a running process.
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds or time runs out.
wait_until() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then die "$what not ready after ${limit}s"; fi
    sleep 0.2
  done
}

# alive_or_explain PIDFILE LOG NAME: fails loudly, with the log's tail, when the daemon died while starting.
alive_or_explain() {
  pid_alive "$1" && return 0
  { log "$3 exited while starting; last lines of $2:"; tail -n 15 "$2"; } >&4 2>&4; exit 1
}

# stop_pidfile FILE NAME: TERM the process, wait for it to exit, KILL if it will not.
stop_pidfile() {
  local file=$1 name=$2
  if pid_alive "$file"; then
    local pid; pid=$(cat "$file")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "$name did not stop in 10s, killing"; kill -9 "$pid" || true; }
    log "$name stopped"
  fi
  rm -f "$file"
}
