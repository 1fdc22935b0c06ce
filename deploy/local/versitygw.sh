#!/usr/bin/env bash
# An S3-compatible server for tests: versitygw (Apache-2.0) with its posix backend over a directory
# in the run dir, bound to 127.0.0.1 only (it listens on all interfaces at :7070 unless told).
# Usage: versitygw.sh install|start|stop|status|env
#   env prints the client settings (MAILLINK_BLOB_URL, AWS_*) as shell assignments.
source "$(dirname "$0")/lib.sh"

VGW_VERSION=v1.8.0
VGW_BIN="$CACHE_DIR/versitygw-$VGW_VERSION"
S3_PORT="${S3_PORT:-10900}"
S3_BUCKET="${S3_BUCKET:-maillink}"
DIR="$RUN_DIR/versitygw"
PIDFILE="$RUN_DIR/versitygw.pid"
CREDENTIALS="$DIR/credentials.env"

install() {
  [ -x "$VGW_BIN" ] && return 0
  command -v go >/dev/null || die "Go is required to build versitygw"
  log "building versitygw $VGW_VERSION into $VGW_BIN (first time only, about a minute)"
  local gobin; gobin=$(mktemp -d)
  GOBIN="$gobin" go install "github.com/versity/versitygw/cmd/versitygw@$VGW_VERSION" \
    || { rm -rf "$gobin"; die "go install of versitygw $VGW_VERSION failed"; }
  mv "$gobin/versitygw" "$VGW_BIN"
  rm -rf "$gobin"
}

credentials() {
  # Generated once per run dir, never passed on a command line (ps would show it).
  if [ ! -f "$CREDENTIALS" ]; then
    mkdir -p "$DIR"
    ( umask 077
      printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' \
        "mlk$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
        "$(head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$CREDENTIALS" )
  fi
  # shellcheck disable=SC1090
  source "$CREDENTIALS"
}

EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# s3 METHOD PATH: one SigV4-signed request, so readiness means "answers authenticated S3 calls".
# versitygw rejects requests without x-amz-content-sha256, which curl's --aws-sigv4 does not add.
s3() {
  local head=(); [ "$1" = HEAD ] && head=(--head)
  curl -sf -o /dev/null --max-time 3 --aws-sigv4 "aws:amz:us-east-1:s3" "${head[@]}" \
    --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: $EMPTY_SHA256" \
    -X "$1" "http://127.0.0.1:$S3_PORT$2"
}

# Runs a daemon with no file descriptor of ours but 0-2: a caller's pipe (a CI runner's, a test
# harness's) held open by the daemon would make that caller wait for it forever.
detached() {
  local fd
  for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
  exec setsid "$@"
}

ready() { s3 GET /; }
ready_or_dead() { alive_or_explain "$PIDFILE" "$DIR/versitygw.log" versitygw; ready; }

ensure_bucket() { s3 HEAD "/$S3_BUCKET" || s3 PUT "/$S3_BUCKET" || die "could not create bucket $S3_BUCKET"; }

start() {
  install
  command -v curl >/dev/null || die "curl is required (readiness check and bucket creation)"
  credentials
  if pid_alive "$PIDFILE"; then
    wait_until 30 versitygw ready; ensure_bucket; log "already running on 127.0.0.1:$S3_PORT"; return 0
  fi
  port_open "$S3_PORT" && die "port $S3_PORT is taken by another process; set S3_PORT"
  mkdir -p "$DIR/data"
  log "starting on 127.0.0.1:$S3_PORT (data: $DIR/data, log: $DIR/versitygw.log)"
  ROOT_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" ROOT_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
    detached "$VGW_BIN" --port "127.0.0.1:$S3_PORT" --quiet posix "$DIR/data" \
    </dev/null >>"$DIR/versitygw.log" 2>&1 &
  echo $! > "$PIDFILE"
  wait_until 60 versitygw ready_or_dead
  ensure_bucket
  log "ready (bucket $S3_BUCKET)"
}

stop() { stop_pidfile "$PIDFILE" versitygw; }

status() {
  if pid_alive "$PIDFILE"; then credentials; fi
  pid_alive "$PIDFILE" && ready 2>/dev/null && echo "versitygw: running on 127.0.0.1:$S3_PORT" \
    || { echo "versitygw: stopped"; return 1; }
}

client_env() {
  credentials
  printf 'MAILLINK_BLOB_URL=s3://%s/\nAWS_ENDPOINT_URL=http://127.0.0.1:%s\n' "$S3_BUCKET" "$S3_PORT"
  printf 'AWS_REGION=us-east-1\nAWS_ALLOW_HTTP=true\n'
  cat "$CREDENTIALS"
}

case "${1:-start}" in
  install|start|stop|status) "${1:-start}" ;;
  env) client_env ;;
  *) die "usage: versitygw.sh install|start|stop|status|env" ;;
esac
