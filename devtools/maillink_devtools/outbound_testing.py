"""Helpers for outbound's tests, crash test and benchmark: the loopback SMTP server
(deploy/local/smtp_server.py) as a process, and accounts that send through it."""
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.fernet import Fernet

from maillink_schemas.accounts import AccountConfigured, ImapEndpoint, Security, SmtpEndpoint

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "deploy/local/smtp_server.py"


@dataclass
class SmtpServer:
    process: subprocess.Popen
    port: int
    ca_file: str | None
    state_dir: Path

    @classmethod
    def start(cls, state_dir: Path, *, file_sent: bool = False, tls: bool = True, run_dir: Path | None = None,
              imap_port: int = 10143, oauth_tokens: dict | None = None, sink: bool = False,
              keep: bool = False) -> "SmtpServer":
        state_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(SERVER), "--state-dir", str(state_dir), "--imap-port", str(imap_port)]
        if run_dir:
            cmd += ["--users-dir", str(run_dir / "dovecot/users.d")]
        if file_sent:
            cmd.append("--file-sent")
        if not tls:
            cmd.append("--no-tls")
        if sink:
            cmd.append("--sink")
        if keep:
            cmd.append("--keep")
        if oauth_tokens is not None:
            (state_dir / "tokens.json").write_text(json.dumps(oauth_tokens))
            cmd += ["--oauth-tokens", str(state_dir / "tokens.json")]
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(state_dir / "server.log", "ab"), text=True)
        line = process.stdout.readline().split()
        if not line or line[0] != "READY":
            process.kill()
            raise RuntimeError(f"the SMTP test server did not start; see {state_dir / 'server.log'}")
        return cls(process, int(line[1]), None if line[2] == "-" else line[2], state_dir)

    def accepted(self) -> list[dict]:
        path = self.state_dir / "accepted.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def messages(self) -> list[bytes]:
        """The accepted messages themselves (started with keep=True)."""
        kept = self.state_dir / "messages"
        return [p.read_bytes() for p in sorted(kept.glob("*.eml"))] if kept.exists() else []

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def smtp_account(email: str, password: str, key: str, smtp_port: int, *, files_sent: bool | None = None,
                 tls: bool = True, provider: str = "local-test", user_id: str = "u-1", imap_port: int = 10143,
                 account_id: str | None = None, company_id: str | None = "c-test") -> AccountConfigured:
    return AccountConfigured(
        event_id=uuid.uuid4().hex, occurred_at=datetime.now(timezone.utc),
        account_id=account_id or f"acc-{uuid.uuid4().hex[:12]}", user_id=user_id, company_id=company_id,
        email=email, imap=ImapEndpoint(host="127.0.0.1", port=imap_port, security=Security.PLAIN),
        username=email, secret_ciphertext=Fernet(key.encode()).encrypt(password.encode()).decode(),
        provider=provider, smtp=SmtpEndpoint(host="127.0.0.1", port=smtp_port,
                                             security=Security.STARTTLS if tls else Security.PLAIN,
                                             files_sent=files_sent))
