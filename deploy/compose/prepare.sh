#!/usr/bin/env bash
# Writes what deploy/compose/compose.yaml needs and must not be committed, once (it never overwrites):
#   .env                     secrets: credentials key, link keys, tracking keys, S3 keys, Grafana password
#   state/auth/jwks.json     a development key set (`maillink keys init`); tokens: `maillink token`
#   state/certs/             a private CA and the S3 server's certificate (versitygw serves TLS: the
#                            services refuse plain HTTP to a non-loopback S3), bundle.pem = system CAs + CA
# Production: take each secret from your secret store instead (README, "Operating maillink").
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || { echo "run 'make install' first (needs the maillink command and cryptography)" >&2; exit 1; }
umask 077
mkdir -p "$HERE/state/certs"

if [ ! -f "$HERE/.env" ]; then
  "$PY" - > "$HERE/.env" <<'PY'
import secrets
from datetime import date
from cryptography.fernet import Fernet
print(f"MAILLINK_CREDENTIALS_KEY={Fernet.generate_key().decode()}")
print(f"MAILLINK_LINK_KEYS={secrets.token_urlsafe(32)}")
print(f"MAILLINK_TRACKING_KEYS=1:{date.today().isoformat()}:{secrets.token_urlsafe(32)}")
print(f"OUTBOUND_TRACKING_SECRET={secrets.token_urlsafe(32)}")
print(f"S3_ACCESS_KEY=maillink{secrets.token_hex(6)}")
print(f"S3_SECRET_KEY={secrets.token_urlsafe(30)}")
print(f"GRAFANA_ADMIN_PASSWORD={secrets.token_urlsafe(18)}")
PY
  echo "wrote $HERE/.env"
fi

MAILLINK_RUN_DIR="$HERE/state" "$ROOT/.venv/bin/maillink" keys init >/dev/null
chmod 644 "$HERE/state/auth/jwks.json"   # public keys; the services run as another user

C="$HERE/state/certs"
if [ ! -f "$C/s3.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -subj "/CN=maillink compose CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    -keyout "$C/ca-key.pem" -out "$C/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=s3" \
    -keyout "$C/s3-key.pem" -out "$C/s3.csr" 2>/dev/null
  openssl x509 -req -in "$C/s3.csr" -CA "$C/ca.pem" -CAkey "$C/ca-key.pem" -CAcreateserial -days 825 \
    -extfile <(printf 'subjectAltName=DNS:s3\nextendedKeyUsage=serverAuth\n') -out "$C/s3.pem" 2>/dev/null
  cat /etc/ssl/certs/ca-certificates.crt "$C/ca.pem" > "$C/bundle.pem"
  chmod 644 "$C/ca.pem" "$C/s3.pem" "$C/bundle.pem" "$C/s3-key.pem"  # read by the containers' own users
  rm -f "$C/s3.csr"
  echo "wrote $C"
fi
echo "ready: docker compose -f $HERE/compose.yaml up -d --build"
