"""One real ingest process in a namespace of its own, for the latency and idle benchmarks.

Accounts reach it the way the HTTP API sends them: AccountConfigured records on the compacted
mail.account.v1 topic. What it publishes is read back from Kafka and timed on arrival, so a
figure covers everything between the IMAP server and an acknowledged event.
"""
import asyncio
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from cryptography.fernet import Fernet

from . import tokens
from .kafka_tools import drop_namespace
from .processes import ServiceSet

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("MAILLINK_RUN_DIR", ROOT / ".run"))
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGODB_URL = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/")
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Mailbox:
    email: str
    password: str
    account_id: str


STARTED: list[ServiceSet] = []  # stopped by stop_all() when a bench is interrupted


def stop_all() -> None:
    for procs in STARTED:
        procs.stop()


class IngestUnderTest:
    """`async with IngestUnderTest(...) as ingest:` one ingest process, stopped and its namespace dropped after."""

    def __init__(self, name: str, env: dict[str, str] | None = None) -> None:
        self.namespace = f"{name}{uuid.uuid4().hex[:6]}."
        self.key = Fernet.generate_key().decode()
        self.logs = RUN_DIR / "bench" / "logs" / self.namespace.strip(".")
        self.extra_env = env or {}
        self.procs = ServiceSet()
        self.blob_dir = RUN_DIR / "bench" / f"blobs-{self.namespace.strip('.')}"

    def topic(self, name: str) -> str:
        return f"{self.namespace}{name}"

    @property
    def pid(self) -> int:
        return self.procs.running["ingest"].process.pid

    async def __aenter__(self) -> "IngestUnderTest":
        keys = RUN_DIR / "bench" / "auth"
        if not (keys / "jwks.json").exists():
            tokens.init_keys(keys)
        env = {"MAILLINK_NAMESPACE": self.namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
               "MAILLINK_CREDENTIALS_KEY": self.key, "MAILLINK_JWKS_FILE": str(keys / "jwks.json"),
               "MAILLINK_LINK_KEYS": "bench-" + uuid.uuid4().hex, "MAILLINK_TOPIC_PARTITIONS": "3",
               "MAILLINK_BLOB_URL": self.blob_dir.resolve().as_uri(),
               "LOG_LEVEL": "WARNING", **self.extra_env}
        STARTED.append(self.procs)
        self.procs.start("ingest", 17000 + uuid.uuid4().int % 900 * 2, env, self.logs)
        await asyncio.to_thread(self.procs.wait_healthy, 120)
        return self

    async def __aexit__(self, *exc) -> None:
        self.procs.stop()
        await drop_namespace(KAFKA, MONGODB_URL, self.namespace, ["maillink_ingest"])
        shutil.rmtree(self.blob_dir, ignore_errors=True)

    async def add_accounts(self, host: str, port: int, mailboxes: list[Mailbox], folders: list[str]) -> None:
        from maillink_ingest.adapters.crypto import CredentialsCipher
        from maillink_schemas.accounts import AccountConfigured, FolderSelection, ImapEndpoint, Security
        cipher = CredentialsCipher(self.key)
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", linger_ms=20)
        await producer.start()
        try:
            sends = []
            for m in mailboxes:
                account = AccountConfigured(
                    event_id=uuid.uuid4().hex, occurred_at=datetime.now(timezone.utc), account_id=m.account_id,
                    user_id=f"u-{m.account_id}", email=m.email, username=m.email,
                    imap=ImapEndpoint(host=host, port=port, security=Security.PLAIN),
                    secret_ciphertext=cipher.encrypt(m.password), folders=FolderSelection(folders=folders))
                sends.append(await producer.send(self.topic("mail.account.v1"), account.model_dump_json().encode(),
                                                 key=m.account_id.encode()))
            await asyncio.gather(*sends)
        finally:
            await producer.stop()

    async def wait_synced(self, account_ids: set[str], timeout: float) -> float:
        """Seconds until every account reported `synced` on the status topic."""
        started, waiting = time.monotonic(), set(account_ids)
        consumer = AIOKafkaConsumer(self.topic("mail.account.status.v1"), bootstrap_servers=KAFKA,
                                    auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            while waiting and time.monotonic() - started < timeout:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for r in records:
                        status = json.loads(r.value)
                        if status["state"] == "synced":
                            waiting.discard(status["account_id"])
        finally:
            await consumer.stop()
        if waiting:
            raise TimeoutError(f"{len(waiting)} of {len(account_ids)} accounts not synced after {timeout}s; "
                               f"see {self.logs}")
        return time.monotonic() - started

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


class Arrivals:
    """Reads mail.message.received.v1 from its end and notes when each Message-ID arrived (wall clock)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.seen: dict[str, float] = {}
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> "Arrivals":
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 60)
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False, group_id=None,
                                    fetch_max_wait_ms=20)
        await consumer.start()
        try:
            partitions = [TopicPartition(self.topic, p["partition"]) for p in described["partitions"]]
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for tp in partitions:
                await consumer.position(tp)  # fixes the end now, before anything is appended
            self._ready.set()
            while True:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    now = time.time()
                    for r in records:
                        message_id = json.loads(r.value)["envelope"].get("message_id")
                        self.seen.setdefault(message_id, now)
        finally:
            await consumer.stop()

    async def wait_for(self, message_ids: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not message_ids <= self.seen.keys() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]
