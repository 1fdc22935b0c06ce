#!/usr/bin/env bash
# Starts, stops or reports all local infrastructure: Kafka, the document store, Dovecot.
# Usage: infra.sh start|stop|status
source "$(dirname "$0")/lib.sh"
here="$(dirname "$0")"
case "${1:-start}" in
  start)  bash "$here/kafka.sh" start; bash "$here/store.sh" start; bash "$here/dovecot.sh" start ;;
  stop)   bash "$here/dovecot.sh" stop; bash "$here/store.sh" stop; bash "$here/kafka.sh" stop ;;
  status) bash "$here/kafka.sh" status; bash "$here/store.sh" status; bash "$here/dovecot.sh" status ;;
  *) die "usage: infra.sh start|stop|status" ;;
esac
