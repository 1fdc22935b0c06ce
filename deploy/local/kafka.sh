#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, combined broker+controller) from the Maven Central jars.
# Listeners: PLAINTEXT on 127.0.0.1:$KAFKA_PORT (tests, the demo, inter-broker) and SASL_SSL
# (SCRAM-SHA-512 over TLS, as in production) on 127.0.0.1:$KAFKA_SASL_PORT, with a private CA
# ($RUN_DIR/kafka/tls/ca.pem) and the user `maillink` (password in $RUN_DIR/kafka/sasl/maillink.password).
# Usage: kafka.sh install|start|stop|status
source "$(dirname "$0")/lib.sh"

KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-9094}"
LIBS="$CACHE_DIR/kafka-libs-4.4.0"
DATA="$RUN_DIR/kafka"
PIDFILE="$RUN_DIR/kafka.pid"
CP="$LIBS/*"
TLS="$DATA/tls"
SASL="$DATA/sasl"
SASL_USER=maillink

install() {
  [ -f "$LIBS/.complete" ] && return 0
  command -v mvn >/dev/null || die "Maven (mvn) is required to fetch the Kafka jars"
  log "fetching Kafka jars into $LIBS"
  rm -rf "$LIBS"
  (cd "$ROOT/deploy/local/kafka" && mvn -q -B dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$LIBS")
  touch "$LIBS/.complete"
}

ready() {
  # Ready means a client can fetch cluster metadata, not merely that the port is open.
  timeout 5 kcat -L -b "127.0.0.1:$KAFKA_PORT" -m 3 2>/dev/null | grep -q "1 brokers"
}

ready_or_dead() { alive_or_explain "$PIDFILE" "$DATA/server.log" Kafka; ready; }

# The SASL_SSL listener presents a certificate that verifies against our CA for 127.0.0.1.
# (Whether the SCRAM login works is checked by ScramUser.java: kcat's librdkafka is too old for it.)
tls_ready() {
  timeout 5 openssl s_client -connect "127.0.0.1:$KAFKA_SASL_PORT" -CAfile "$TLS/ca.pem" -verify_ip 127.0.0.1 \
    -verify_return_error </dev/null >/dev/null 2>&1
}

tls_setup() {
  [ -f "$TLS/broker.pem" ] && return 0
  # A private CA and a broker certificate for 127.0.0.1/localhost, made once at set-up time. Clients
  # must trust ca.pem explicitly; nothing here turns verification off.
  mkdir -p "$TLS"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=maillink local Kafka CA" \
    -keyout "$TLS/ca.key" -out "$TLS/ca.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$TLS/broker.key" -out "$TLS/broker.csr" >/dev/null 2>&1
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" > "$TLS/broker.ext"
  openssl x509 -req -in "$TLS/broker.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial -days 3650 \
    -extfile "$TLS/broker.ext" -out "$TLS/broker.crt" >/dev/null 2>&1
  # Kafka's PEM keystore: the PKCS#8 private key and the certificate chain in one file.
  (umask 077; cat "$TLS/broker.key" "$TLS/broker.crt" > "$TLS/broker.pem.tmp")
  chmod 600 "$TLS/ca.key" "$TLS/broker.key"
  mv "$TLS/broker.pem.tmp" "$TLS/broker.pem"
}

sasl_setup() {
  mkdir -p "$SASL"; chmod 700 "$SASL"
  # The password is generated once; later starts reuse it.
  [ -s "$SASL/$SASL_USER.password" ] || (umask 077; openssl rand -hex 24 > "$SASL/$SASL_USER.password")
  chmod 600 "$SASL/$SASL_USER.password"
}

# ensure_sasl_user: idempotent. Adds the user through the Admin API on the PLAINTEXT listener, which
# also covers a data dir formatted before the SASL listener existed, then proves the login over
# SASL_SSL. A marker (cluster id + password hash) skips the JVM on later starts; a reformatted data
# dir or a new password file changes it.
ensure_sasl_user() {
  local marker; marker="$(grep '^cluster.id=' "$DATA/data/meta.properties") $(sha256sum < "$SASL/$SASL_USER.password")"
  [ "$(cat "$SASL/user-ok" 2>/dev/null)" = "$marker" ] && return 0
  log "adding SCRAM-SHA-512 user $SASL_USER"
  java -cp "$CP" "$ROOT/deploy/local/kafka/ScramUser.java" "127.0.0.1:$KAFKA_PORT" "127.0.0.1:$KAFKA_SASL_PORT" \
    "$SASL_USER" "$SASL/$SASL_USER.password" "$TLS/ca.pem" >"$DATA/scram-user.log" 2>&1 \
    || { tail -n 20 "$DATA/scram-user.log" >&2; die "adding the SCRAM user failed (log: $DATA/scram-user.log)"; }
  echo "$marker" > "$SASL/user-ok"
}

start() {
  install
  if pid_alive "$PIDFILE"; then
    wait_until 60 "Kafka" ready; log "already running on 127.0.0.1:$KAFKA_PORT"
    if port_open "$KAFKA_SASL_PORT"; then sasl_setup; ensure_sasl_user
    else log "WARNING: it was started without the SASL_SSL listener on 127.0.0.1:$KAFKA_SASL_PORT;" \
             "restart it (kafka.sh stop; kafka.sh start) to add it"
    fi
    return 0
  fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process; set KAFKA_PORT"
  port_open "$KAFKA_SASL_PORT" && die "port $KAFKA_SASL_PORT is taken by another process; set KAFKA_SASL_PORT"
  mkdir -p "$DATA"
  tls_setup
  sasl_setup
  sed -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
      -e "s#@SASL_PORT@#$KAFKA_SASL_PORT#g" -e "s#@TLS@#$TLS#g" \
      -e "s#@DATA@#$DATA/data#g" "$ROOT/deploy/local/kafka/server.properties.in" > "$DATA/server.properties"
  if [ ! -f "$DATA/data/meta.properties" ]; then
    java -cp "$CP" kafka.tools.StorageTool format --standalone \
      -t "$(java -cp "$CP" kafka.tools.StorageTool random-uuid)" \
      -c "$DATA/server.properties" >"$DATA/format.log" 2>&1 || { cat "$DATA/format.log" >&2; die "storage format failed"; }
  fi
  log "starting on 127.0.0.1:$KAFKA_PORT (logs: $DATA/server.log)"
  # setsid + redirected fds: the broker outlives the shell that started it and holds none of its pipes.
  setsid nohup java -Xmx1g -XX:+UseG1GC -Dkafka.logs.dir="$DATA" \
    -Dlog4j2.configurationFile="$ROOT/deploy/local/kafka/log4j2.properties" \
    -cp "$CP" kafka.Kafka "$DATA/server.properties" </dev/null >"$DATA/stdout.log" 2>&1 4>&- &
  echo $! > "$PIDFILE"
  wait_until 120 "Kafka" ready_or_dead
  ensure_sasl_user
  log "ready (SASL_SSL on 127.0.0.1:$KAFKA_SASL_PORT)"
}

stop() { stop_pidfile "$PIDFILE" Kafka; }

status() {
  if pid_alive "$PIDFILE" && ready; then
    echo "kafka: running on 127.0.0.1:$KAFKA_PORT$(tls_ready && echo ", SASL_SSL on 127.0.0.1:$KAFKA_SASL_PORT")"
  else echo "kafka: stopped"; fi
}

"${1:-start}"
