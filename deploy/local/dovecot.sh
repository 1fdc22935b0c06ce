#!/usr/bin/env bash
# A private Dovecot IMAP server (never the system instance), for tests, the demo and the bench.
# Usage: dovecot.sh install|start|stop|status|adduser USER PASSWORD
#
# Ports come from IMAP_PORT / IMAPS_PORT and the data directory from MAILLINK_RUN_DIR, so a second,
# private instance can run beside the shared one. Its limits come from the environment when it is
# configured (at start); the defaults are what tests need. Many concurrent connections (make
# bench-idle: 1,000 accounts, 3 connections each) need all of them raised, e.g.
#   DOVECOT_IMAP_PROCESS_LIMIT=100 DOVECOT_IMAP_CLIENT_LIMIT=100 DOVECOT_IMAP_SERVICE_COUNT=0 DOVECOT_CLIENT_LIMIT=10000 \
#   DOVECOT_LOGIN_SERVICE_COUNT=0 IMAP_PORT=11143 IMAPS_PORT=11993 MAILLINK_RUN_DIR=/tmp/x dovecot.sh start
#   DOVECOT_PROCESS_LIMIT        default_process_limit, processes per service (default 200)
#   DOVECOT_IMAP_PROCESS_LIMIT   imap processes (default 1024, Dovecot's own)
#   DOVECOT_IMAP_CLIENT_LIMIT    connections one imap process serves at once (default 1: one process each)
#   DOVECOT_IMAP_SERVICE_COUNT   connections one imap process serves in its life (default 1; 0: unlimited)
#   DOVECOT_CLIENT_LIMIT         default_client_limit, also each login process's (default 1000)
#   DOVECOT_MAX_USERIP           mail_max_userip_connections, per user and IP (default 100)
#   DOVECOT_LOGIN_SERVICE_COUNT  imap-login's service_count: 1 a process per login, 0 shared ones (default 1)
# Dovecot needs file descriptors for all of them: `ulimit -n` above the total connection count.
source "$(dirname "$0")/lib.sh"

DIR="$RUN_DIR/dovecot"
CONF="$DIR/dovecot.conf"

install() {
  command -v dovecot >/dev/null || die "dovecot is not installed (scripts/bootstrap.sh installs dovecot-imapd)"
  id vmail >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin vmail
}

ready() {
  # Ready means the IMAP greeting arrives, not merely an open port.
  timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$IMAP_PORT; head -c 4 <&3" | grep -q '^\* OK'
}

configure() {
  mkdir -p "$DIR/run" "$DIR/mail" "$DIR/tls" "$DIR/users.d"
  if [ ! -f "$DIR/tls/cert.pem" ]; then
    # A self-signed certificate made at set-up time, for TLS tests (clients must trust it explicitly).
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$DIR/tls/key.pem" -out "$DIR/tls/cert.pem" >/dev/null 2>&1
  fi
  sed -e "s#@DIR@#$DIR#g" -e "s#@IMAP_PORT@#$IMAP_PORT#g" -e "s#@IMAPS_PORT@#$IMAPS_PORT#g" \
    -e "s#@PROCESS_LIMIT@#${DOVECOT_PROCESS_LIMIT:-200}#g" -e "s#@IMAP_CLIENT_LIMIT@#${DOVECOT_IMAP_CLIENT_LIMIT:-1}#g" \
    -e "s#@DEFAULT_CLIENT_LIMIT@#${DOVECOT_CLIENT_LIMIT:-1000}#g" -e "s#@MAX_USERIP@#${DOVECOT_MAX_USERIP:-100}#g" \
    -e "s#@IMAP_SERVICE_COUNT@#${DOVECOT_IMAP_SERVICE_COUNT:-1}#g" -e "s#@IMAP_PROCESS_LIMIT@#${DOVECOT_IMAP_PROCESS_LIMIT:-1024}#g" -e "s#@LOGIN_SERVICE_COUNT@#${DOVECOT_LOGIN_SERVICE_COUNT:-1}#g" \
    "$ROOT/deploy/local/dovecot/dovecot.conf.in" > "$CONF"
  chmod 755 "$DIR" "$DIR/run" "$DIR/users.d"; chmod 644 "$CONF"
  chown -R vmail:vmail "$DIR/mail"
}

running() { [ -f "$DIR/run/master.pid" ] && kill -0 "$(cat "$DIR/run/master.pid")" 2>/dev/null; }

start() {
  install
  if running; then wait_until 30 Dovecot ready; log "already running on 127.0.0.1:$IMAP_PORT"; return 0; fi
  port_open "$IMAP_PORT" && die "port $IMAP_PORT is taken by another process; set IMAP_PORT"
  configure
  log "starting on 127.0.0.1:$IMAP_PORT (imaps $IMAPS_PORT; log: $DIR/dovecot.log)"
  # Dovecot daemonizes but keeps the caller's stdout/stderr; detach them so no pipe is held open.
  setsid dovecot -c "$CONF" </dev/null >>"$DIR/dovecot.stdout" 2>&1 4>&-
  wait_until 30 Dovecot ready
  log "ready"
}

stop() {
  if running; then
    local pid; pid=$(cat "$DIR/run/master.pid")
    dovecot -c "$CONF" stop || true
    wait_until 30 "Dovecot shutdown" bash -c "! kill -0 $pid"
    log "Dovecot stopped"
  fi
}

# adduser USER PASSWORD: add a mailbox user or change its password.
# USER is an address whose local part may also hold a space, " \ or ' (tests of IMAP quoting need
# them; dovecot.conf.in allows them in auth_username_chars). Never ":" (it ends a passwd-file field),
# "/" (the user names its own file) or a control character. The password may hold anything: it is
# stored base64-encoded ({PLAIN.B64}), so ":" or a newline cannot break the line.
adduser() {
  local user=$1 password=$2 allowed="^[A-Za-z0-9._%+ \"\\'-]+@[A-Za-z0-9.-]+\$"
  [[ "$user" =~ $allowed ]] || die "not an address this test server accepts: $user"
  [ -d "$DIR/users.d" ] || configure
  local file="$DIR/users.d/$user" old=0
  [ -f "$file" ] && old=$(stat -c %Y "$file")
  # Quirk (Dovecot 2.3): passwd-file looks the user up by username_format expanded with str_escape,
  # so the name in the line carries the same backslash before \ " and ' (the file name does not).
  local escaped; escaped=$(printf '%s' "$user" | sed -e "s/[\\\\\"']/\\\\&/g")
  printf '%s:{PLAIN.B64}%s\n' "$escaped" "$(printf '%s' "$password" | base64 -w0)" > "$file.tmp"
  chmod 644 "$file.tmp"; mv "$file.tmp" "$file"
  # A password change must be seen even within the same second: move the mtime forward.
  local now; now=$(date +%s)
  touch -d "@$(( now > old ? now : old + 1 ))" "$file"
}

status() { running && ready && echo "dovecot: running on 127.0.0.1:$IMAP_PORT" || echo "dovecot: stopped"; }

cmd=${1:-start}; shift || true
"$cmd" "$@"
