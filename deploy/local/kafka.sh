#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, combined broker+controller) from the Maven Central jars.
# Usage: kafka.sh install|start|stop|status
source "$(dirname "$0")/lib.sh"

LIBS="$CACHE_DIR/kafka-libs-4.4.0"
DATA="$RUN_DIR/kafka"
PIDFILE="$RUN_DIR/kafka.pid"
CP="$LIBS/*"

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

start() {
  install
  if pid_alive "$PIDFILE"; then
    wait_until 60 "Kafka" ready; log "already running on 127.0.0.1:$KAFKA_PORT"; return 0
  fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process; set KAFKA_PORT"
  mkdir -p "$DATA"
  sed -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
      -e "s#@DATA@#$DATA/data#g" "$ROOT/deploy/local/kafka/server.properties.in" > "$DATA/server.properties"
  if [ ! -f "$DATA/data/meta.properties" ]; then
    java -cp "$CP" kafka.tools.StorageTool format --standalone \
      -t "$(java -cp "$CP" kafka.tools.StorageTool random-uuid)" \
      -c "$DATA/server.properties" >"$DATA/format.log" 2>&1 || { cat "$DATA/format.log" >&2; die "storage format failed"; }
  fi
  log "starting on 127.0.0.1:$KAFKA_PORT (logs: $DATA/server.log)"
  # setsid + redirected fds: the broker outlives the shell that started it and holds none of its pipes.
  setsid nohup java -Xmx512m -XX:+UseG1GC -Dkafka.logs.dir="$DATA" \
    -Dlog4j2.configurationFile="$ROOT/deploy/local/kafka/log4j2.properties" \
    -cp "$CP" kafka.Kafka "$DATA/server.properties" </dev/null >"$DATA/stdout.log" 2>&1 4>&- &
  echo $! > "$PIDFILE"
  wait_until 120 "Kafka" ready_or_dead
  log "ready"
}

stop() { stop_pidfile "$PIDFILE" Kafka; }

status() { pid_alive "$PIDFILE" && ready && echo "kafka: running on 127.0.0.1:$KAFKA_PORT" || echo "kafka: stopped"; }

"${1:-start}"
