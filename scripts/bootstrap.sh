#!/usr/bin/env bash
# Installs whatever is missing on a fresh Debian 12 machine: system packages, the Python
# environment (uv, cached outside the checkout), the Kafka jars and the FerretDB binary.
# Safe to run any number of times; a second run does almost nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE_DIR="${MAILLINK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/maillink}"
VENV="${MAILLINK_VENV:-$ROOT/.venv}"
mkdir -p "$CACHE_DIR"

# Debian packages: Dovecot (the IMAP server), kcat (an independent Kafka client), swaks (an SMTP
# client), isync (mbsync, the IMAP sync yardstick), openssl (test certificates), prometheus (promtool
# checks the scrape config, alert rules and every /metrics page), chromium (the tracker's
# real-browser test), wrk and nginx (the tracker's benchmark and its yardstick), dnsmasq-base (the
# test DNS server for SPF/DKIM/DMARC records, run privately on its own port; -base is the binary
# without the system service that the `dnsmasq` package would start on port 53).
APT_PKGS=(dovecot-imapd kafkacat swaks isync openssl prometheus chromium wrk nginx dnsmasq-base)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[bootstrap] apt-get install ${missing[*]}" >&2
  # policy-rc.d may refuse to start the system Dovecot; we never use that instance anyway.
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# uv lives in its own small venv in the cache; its package cache (~/.cache/uv) makes a fresh
# clone's environment a matter of seconds.
UV="$CACHE_DIR/uv-venv/bin/uv"
if [ ! -x "$UV" ]; then
  python3 -m venv "$CACHE_DIR/uv-venv"
  "$CACHE_DIR/uv-venv/bin/pip" install -q uv==0.13.8
fi
stamp="$VENV/.maillink-installed"
PACKAGES=("$ROOT/schemas" "$ROOT/runtime" "$ROOT"/services/*/ "$ROOT/devtools")
want=$(cat "$ROOT/requirements.txt" "${PACKAGES[@]/%//pyproject.toml}" | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  [ -x "$VENV/bin/python" ] || "$UV" venv -q -p python3.11 "$VENV"
  echo "[bootstrap] installing Python packages into $VENV" >&2
  "$UV" pip install -q -p "$VENV" -r "$ROOT/requirements.txt" $(printf -- '-e %s ' "${PACKAGES[@]}")
  echo "$want" > "$stamp"
fi

bash "$ROOT/deploy/local/kafka.sh" install
bash "$ROOT/deploy/local/store.sh" install
bash "$ROOT/deploy/local/dovecot.sh" install
bash "$ROOT/deploy/local/versitygw.sh" install  # S3-compatible server for the S3 tests: a Go build of ~1 min, once
