#!/usr/bin/env python3
"""A real SMTP submission server on loopback for outbound's tests, crash test and benchmark
(aiosmtpd): STARTTLS with a certificate made at start-up, AUTH PLAIN/LOGIN checked against the
local Dovecot's users (the same credentials as IMAP), and XOAUTH2 with tokens from a file,
answering failures the way Gmail documents it (a 334 challenge carrying a JSON error, then 535).

--file-sent makes it behave like Gmail/Microsoft 365: everything it accepts is APPENDed to the
sender's Sent folder in Dovecot *before* the 250 goes out. Every accepted message is written as
one JSON line to <state-dir>/accepted.jsonl (Message-ID, sender, recipients, size, user), which
is how the tests count deliveries.

Test behaviour by recipient address: reject-*@ gets 550 (permanent), tempfail-*@ gets 451 on the
first RCPT for that sender and address, then 250 (transient).

--keep also writes every accepted message to <state-dir>/messages/<n>.eml (tests that read what
was delivered, e.g. a confirmation link).

Usage: smtp_server.py --state-dir DIR [--port 0] [--file-sent] [--tls|--no-tls] [--imap-port 10143]
       [--users-dir RUN/dovecot/users.d] [--oauth-tokens FILE] [--sink] [--keep]
Prints `READY <port> <ca.pem>` on stdout once it listens. --sink accepts any AUTH and stores nothing.
"""
import argparse
import asyncio
import base64
import datetime
import imaplib
import json
import re
import ssl
import subprocess
import sys
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([^>]+)>", re.IGNORECASE | re.MULTILINE)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def dovecot_password(users_dir: Path, user: str) -> str | None:
    # deploy/local/dovecot.sh adduser writes `user:{PLAIN.B64}<base64 password>` to users.d/<user>.
    path = users_dir / user
    if not path.is_file():
        return None
    line = path.read_text().strip()
    _, _, stored = line.rpartition(":")
    return base64.b64decode(stored.removeprefix("{PLAIN.B64}")).decode() if stored.startswith("{PLAIN.B64}") else None


class Handler:
    def __init__(self, args) -> None:
        self.args, self.log_path = args, Path(args.state_dir) / "accepted.jsonl"
        self.tokens = json.loads(Path(args.oauth_tokens).read_text()) if args.oauth_tokens else {}
        self.tempfailed: set[tuple[str, str]] = set()
        self.log = open(self.log_path, "a", buffering=1)

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if self.args.sink:
            return AuthResult(success=True, auth_data=b"sink")
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        ok = password and dovecot_password(Path(self.args.users_dir), user) == password
        return AuthResult(success=bool(ok), handled=False, auth_data=user.encode() if ok else None)

    async def auth_XOAUTH2(self, server, args):
        # RFC 7628-style XOAUTH2 as Gmail documents it; the initial response is on the AUTH line.
        # aiosmtpd passes the AUTH arguments after the verb: [mechanism, initial response].
        blob = args[1] if len(args) > 1 else await server.challenge_auth("", encode_to_b64=False)
        try:
            fields = dict(p.split("=", 1) for p in base64.b64decode(blob).decode().split("\x01") if p)
            user, token = fields["user"], fields["auth"].removeprefix("Bearer ")
        except Exception:  # noqa: BLE001 - malformed: a plain 501 from aiosmtpd's side
            return AuthResult(success=False, handled=False)
        if self.tokens.get(user) == token:
            return AuthResult(success=True, auth_data=user.encode())
        error = base64.b64encode(json.dumps({"status": "401", "schemes": "bearer",
                                             "scope": "https://mail.google.com/"}).encode())
        await server.challenge_auth(error, encode_to_b64=False)
        return AuthResult(success=False, handled=False)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("reject-"):
            return "550 5.1.1 The email account that you tried to reach does not exist."
        if local.startswith("tempfail-") and (envelope.mail_from, address) not in self.tempfailed:
            self.tempfailed.add((envelope.mail_from, address))
            return "451 4.3.0 Mail server temporarily rejected message."
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        if self.args.sink:
            return "250 2.0.0 OK"
        user = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        # Accepting is one unit: filed and counted, or neither. aiosmtpd cancels this handler when the
        # client's connection drops (as when outbound is SIGKILLed mid-DATA); shielded, the accept
        # still completes, as it would at a real provider, and only the 250 goes unheard.
        try:
            await asyncio.shield(self.accept(user, envelope, content))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - like a real provider: no filing, no acceptance
            return f"451 4.3.0 Could not file the message ({type(exc).__name__})"
        return "250 2.0.0 OK: queued"

    async def accept(self, user, envelope, content: bytes) -> None:
        if self.args.file_sent and user:
            await asyncio.to_thread(self.file_sent, user, content)
        found = _MESSAGE_ID.search(content)
        if self.args.keep:
            kept = Path(self.args.state_dir) / "messages"
            kept.mkdir(exist_ok=True)
            (kept / f"{len(list(kept.iterdir())):06d}.eml").write_bytes(content)
        self.log.write(json.dumps({"message_id": found.group(1).decode() if found else None,
                                   "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                                   "size": len(content), "user": user}) + "\n")

    def file_sent(self, user: str, content: bytes) -> None:
        password = dovecot_password(Path(self.args.users_dir), user)
        with imaplib.IMAP4("127.0.0.1", self.args.imap_port) as imap:
            imap.login(user, password)
            imap.append("Sent", "(\\Seen)", imaplib.Time2Internaldate(datetime.datetime.now(datetime.timezone.utc)),
                        content)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--file-sent", action="store_true")
    parser.add_argument("--no-tls", dest="tls", action="store_false")
    parser.add_argument("--imap-port", type=int, default=10143)
    parser.add_argument("--users-dir", default=str(Path(__file__).resolve().parents[2] / ".run/dovecot/users.d"))
    parser.add_argument("--oauth-tokens")
    parser.add_argument("--sink", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    state = Path(args.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    handler = Handler(args)
    tls = None
    if args.tls:
        cert, key = make_certificate(state)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)

    def factory():
        return SMTP(handler, hostname="localhost", tls_context=tls, require_starttls=bool(tls),
                    authenticator=handler.authenticate, auth_required=True, auth_require_tls=bool(tls),
                    data_size_limit=80 * 1024 * 1024)

    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", args.port)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port} {state / 'smtp-cert.pem' if tls else '-'}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
