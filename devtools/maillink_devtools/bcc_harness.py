"""What the Smart Bcc tests and benchmark run against: a private DNS server (Debian's dnsmasq on a
loopback port, never the system service) serving the test SPF/DKIM/DMARC records, DKIM keys, swaks.
"""
import base64
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import dkim
import dns.resolver
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _dnsmasq() -> str:
    found = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None)
    if not found:
        raise RuntimeError("dnsmasq is missing: bash scripts/bootstrap.sh installs it (Debian's dnsmasq-base)")
    return found


@dataclass
class TestDns:
    port: int
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def start_dns(records: dict[str, str], zones: list[str], log_path: Path, port: int | None = None,
              ttl: int = 300) -> TestDns:
    """Serves `records` (name -> TXT value) and answers NXDOMAIN for any other name in `zones`
    (--local), so a missing record is "none", not a resolver failure. Nothing is forwarded.
    `port`: a given one (a changed zone served where the old one was), else a free one."""
    port = port or free_port()
    args = [_dnsmasq(), "--keep-in-foreground", f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces",
            "--no-resolv", "--no-hosts", "--no-poll", "--conf-file=/dev/null", "--pid-file=", "--log-facility=-",
            # A TTL like real records have (dnsmasq's default for its own records is 0), so a resolver
            # cache behaves here as it does in production.
            f"--local-ttl={ttl}"]
    args += [f"--local=/{zone}/" for zone in zones]
    # A TXT record is a list of strings of at most 255 bytes each (a 2048-bit DKIM key is longer).
    args += [f"--txt-record={name}," + ",".join(value[i:i + 250] for i in range(0, len(value), 250))
             for name, value in records.items()]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    dns_server = TestDns(port, process)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port, resolver.lifetime = ["127.0.0.1"], port, 1
    name = next(iter(records))
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"dnsmasq exited: {log_path.read_text()[-2000:]}")
        try:
            resolver.resolve(name, "TXT")
            return dns_server
        except Exception:  # noqa: BLE001 - not listening yet
            if time.monotonic() > deadline:
                dns_server.stop()
                raise
            time.sleep(0.1)


@dataclass(frozen=True)
class DkimKey:
    selector: str
    domain: str
    private_pem: bytes
    public_b64: str

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def record(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_b64}"

    def sign(self, raw: bytes) -> bytes:
        header = dkim.sign(raw, self.selector.encode(), self.domain.encode(), self.private_pem,
                           include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
        return header + raw


def dkim_key(selector: str, domain: str) -> DkimKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return DkimKey(selector, domain, private, base64.b64encode(public).decode())


@dataclass(frozen=True)
class SwaksResult:
    code: int
    transcript: str

    @property
    def accepted(self) -> bool:
        return self.code == 0


def swaks(port: int, mail_from: str, to: str, data: bytes | None = None, *, tls: bool = False,
          tmp_dir: Path | None = None, extra: list[str] = ()) -> SwaksResult:
    """One SMTP transaction with swaks, the real client; `data` is the whole message as sent."""
    args = ["swaks", "--server", f"127.0.0.1:{port}", "--from", mail_from, "--to", to, "--helo", "mua.test",
            "--timeout", "60", *extra]
    if tls:
        args.append("--tls")
    if data is not None:
        path = (tmp_dir or Path("/tmp")) / f"swaks-{time.monotonic_ns()}.eml"
        path.write_bytes(data)
        args += ["--data", str(path)]
    done = subprocess.run(args, capture_output=True, text=True, errors="replace", timeout=120)
    return SwaksResult(done.returncode, done.stdout + done.stderr)
