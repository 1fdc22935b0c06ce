"""`make chaos`: faults injected while mail flows from mailboxes to linked; then a verdict.

Run by scripts/chaos.sh, which gives it PRIVATE servers (own run dir, own ports: it restarts the
broker and the store, so it must never touch the shared ones) and stops them afterwards.

1. Seeds: CRM persons (crm.persons.v1), one Dovecot mailbox per account, and CHAOS_MESSAGES
   messages spread over the accounts (INBOX and Sent), written as maildir files (as a delivery
   agent would; APPEND of 20,000 messages costs minutes). A share goes in before the accounts are
   connected (initial sync); the rest trickles in during the fault window (new mail: IDLE/poll).
2. Runs all five services as real processes and connects each mailbox through ingest's API.
3. During the window, at random moments, one after another: SIGKILL + restart of every service
   (ingest and matcher three times, the others twice), a broker restart, a store restart,
   `doveadm kick`, forced UIDVALIDITY changes of an INBOX (one with its UIDs kept, one a real reset
   that renumbers them: see uidvalidity_reset), a password change followed by
   re-authentication through PATCH /accounts/{id}, and the blob directory read-only for 30 s.
4. Waits until it settles (every account `synced` with at least the mailbox's count, the matcher's lag 0),
   then audits with an independent consumer and the matcher's store (chaos_audit.py defines
   lost and duplicated) and prints the faults, then `chaos: in=… linked=… lost=… duplicated=…`.

The blob store read-only fault: the run is root, so chmod would not stop a write. A read-only bind
mount over the blob directory does (writes fail with EROFS exactly as on a remounted disk); it is
lifted after 30 s, and scripts/chaos.sh unmounts it on any exit.
"""
import asyncio
import json
import os
import pwd
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from maillink_schemas.crm import PersonUpserted, UserUpserted
from maillink_schemas.topics import Topic

from . import tokens
from .kafka_tools import drop_namespace
from .chaos_audit import Expected, audit
from .mailgen import Mail, sentence
from .processes import ServiceSet

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ["MAILLINK_RUN_DIR"]).resolve()
KAFKA = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
MONGODB_URL = os.environ["MONGODB_URL"]
IMAP_PORT = int(os.environ["IMAP_PORT"])
DOVECOT_CONF = RUN_DIR / "dovecot" / "dovecot.conf"
BLOBS = RUN_DIR / "blobs"
PORTS = {"ingest": 13101, "matcher": 13102, "tracker": 13103, "outbound": 13104, "bcc_gateway": 13105}
SMTP_PORT = 13125
PERSONS = 200
KILLS = {"ingest": 3, "matcher": 3, "tracker": 2, "outbound": 2, "bcc_gateway": 2}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


@dataclass
class Message:
    token: str
    folder: str          # INBOX or Sent
    person_id: str
    raw: bytes


@dataclass
class Account:
    index: int
    email: str
    password: str
    user_id: str
    messages: list[Message] = field(default_factory=list)
    account_id: str = ""


def person_email(k: int) -> str:
    return f"person{k}@customer{k % 40}.example"


def generate(accounts: list[Account], total: int, rng: random.Random) -> None:
    """Realistic mail: threads (replies carry In-Reply-To/References), html alternatives, a few
    attachments; each Subject holds the message's unique token."""
    now = datetime.now(timezone.utc)
    per = total // len(accounts)
    for acc in accounts:
        ids: list[str] = []
        for i in range(per + (1 if acc.index < total % len(accounts) else 0)):
            k = rng.randrange(PERSONS)
            token = f"{acc.index}-{i}"
            outgoing = rng.random() < 0.15
            reply = ids and rng.random() < 0.3
            parent = rng.choice(ids[-50:]) if reply else None
            mid = f"<chaos-{token}-{uuid.uuid4().hex[:8]}@{'chaos.test' if outgoing else 'customer.example'}>"
            mail = Mail(sender=acc.email if outgoing else person_email(k), to=[person_email(k) if outgoing else acc.email],
                        subject=f"{'Re: ' if reply else ''}[chaos {token}] {sentence(rng, 4)}",
                        body="\n\n".join(sentence(rng, rng.randrange(20, 80)) for _ in range(rng.randrange(1, 4))),
                        date=now - timedelta(days=2) + timedelta(seconds=i), html=rng.random() < 0.5,
                        message_id=mid, in_reply_to=parent, references=[parent] if parent else [])
            if rng.random() < 0.02:
                mail.attachment = rng.randbytes(rng.randrange(5_000, 60_000))
            ids.append(mid)
            acc.messages.append(Message(token, "Sent" if outgoing else "INBOX", f"p-{k}", mail.to_bytes()))


class Maildir:
    """Delivers into Dovecot's maildir the way a delivery agent does: write in tmp/, rename into new/."""

    def __init__(self) -> None:
        vmail = pwd.getpwnam("vmail")
        self.uid, self.gid, self.seq = vmail.pw_uid, vmail.pw_gid, 0
        self.host = socket.gethostname().replace("/", "_").replace(":", "_")

    def folder(self, email: str, folder: str) -> Path:
        base = RUN_DIR / "dovecot" / "mail" / email
        return base if folder == "INBOX" else base / f".{folder}"

    def deliver(self, email: str, message: Message) -> None:
        self.seq += 1
        box = self.folder(email, message.folder)
        name = f"{int(time.time())}.M{self.seq}P{os.getpid()}.{self.host}"
        tmp = box / "tmp" / name
        tmp.write_bytes(message.raw)
        os.chown(tmp, self.uid, self.gid)
        os.rename(tmp, box / "new" / name)


def imap_login(acc: Account):
    import imaplib
    conn = imaplib.IMAP4("127.0.0.1", IMAP_PORT)
    conn.authenticate("PLAIN", lambda _: b"\0" + acc.email.encode() + b"\0" + acc.password.encode())
    return conn


def mailbox_tokens(acc: Account) -> dict[str, int]:
    """Tokens of the messages the IMAP server holds for this account (INBOX and Sent), with counts."""
    found: dict[str, int] = {}
    conn = imap_login(acc)
    try:
        for folder in ("INBOX", "Sent"):
            typ, data = conn.select(folder, readonly=True)
            if typ != "OK" or int(data[0]) == 0:
                continue
            typ, data = conn.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            for part in data:
                if isinstance(part, tuple):
                    from .chaos_audit import token_of
                    token = token_of(part[1].decode("ascii", "replace"))
                    if token:
                        found[token] = found.get(token, 0) + 1
    finally:
        conn.logout()
    return found


def sh(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, env=env)


def infra_env() -> dict[str, str]:
    # store.sh would use MONGODB_URL instead of starting its own server: the restart fault needs its own.
    return {k: v for k, v in os.environ.items() if k != "MONGODB_URL"}


def doveadm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("doveadm", "-c", str(DOVECOT_CONF), *args, check=check)


# --- Kafka reads (independent: no consumer group) --------------------------------------------

async def read_to_end(topic: str) -> list[dict]:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            return []
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[dict] = []
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                out.extend(json.loads(r.value) for r in records if r.value)
        return out
    finally:
        await consumer.stop()


async def group_lag(group: str, topic: str) -> int | None:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient
    admin, consumer = AIOKafkaAdminClient(bootstrap_servers=KAFKA), AIOKafkaConsumer(bootstrap_servers=KAFKA)
    await admin.start()
    await consumer.start()
    try:
        (described,) = await admin.describe_topics([topic])
        tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        if not tps:
            return None
        ends = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group)
        return sum(ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
                   for tp in tps)
    finally:
        await consumer.stop()
        await admin.close()


async def produce(topic: str, items: list[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", linger_ms=20)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, v, key=k) for k, v in items])
    finally:
        await producer.stop()


# --- the run ---------------------------------------------------------------------------------

class Chaos:
    def __init__(self, messages: int, accounts: int, window_s: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.run_id = uuid.uuid4().hex[:6]
        self.namespace = f"chaos{self.run_id}."
        self.window_s = window_s
        self.accounts = [Account(i, f"chaos{i}-{self.run_id}@chaos.test", uuid.uuid4().hex, f"u-chaos-{i}")
                         for i in range(accounts)]
        self.total = messages
        self.faults: list[tuple[float, str]] = []
        self.started = time.monotonic()
        self.procs = ServiceSet()
        self.auth = RUN_DIR / "auth"
        tokens.init_keys(self.auth)
        self.env = {
            "MAILLINK_NAMESPACE": self.namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
            "MAILLINK_RUN_DIR": str(RUN_DIR), "MAILLINK_CREDENTIALS_KEY": Fernet.generate_key().decode(),
            "MAILLINK_JWKS_FILE": str(self.auth / "jwks.json"), "MAILLINK_LINK_KEYS": uuid.uuid4().hex,
            "MAILLINK_TRACKING_KEYS": "1:2020-01-01:" + uuid.uuid4().hex, "INGEST_POLL_INTERVAL_S": "2",
            "MATCHER_BLOB_URLS": json.dumps({"ingest": f"http://127.0.0.1:{PORTS['ingest']}"}),
            "OUTBOUND_TRACKER_BASE_URL": f"http://127.0.0.1:{PORTS['tracker']}",
            "BCC_GATEWAY_SMTP_PORT": str(SMTP_PORT), "BCC_GATEWAY_TLS_DIR": str(RUN_DIR / "bcc-gateway" / "tls"),
            "BCC_GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{PORTS['bcc_gateway']}",
        }
        self.log_dir = RUN_DIR / "logs" / self.namespace.rstrip(".")
        self.synced: dict[str, int] = {}
        self.lock = threading.Lock()
        self.lag_said = 0.0
        self.exits: list[tuple[float, str]] = []
        self.delivered = 0

    def t(self) -> float:
        return time.monotonic() - self.started

    def say(self, text: str) -> None:
        print(f"[{self.t():6.1f}s] {text}", flush=True)

    def fault(self, text: str) -> None:
        self.faults.append((self.t(), text))
        self.say(f"FAULT {text}  [{self.progress()}]")

    def progress(self) -> str:
        """How far the flow is (ingest's synced counts; the last known one of an account ingest cannot answer for)."""
        for acc in self.accounts:
            if acc.account_id and (status := self.status(acc, timeout=3)):
                self.synced[acc.email] = status["messages_synced"]
        return f"synced {sum(self.synced.values())}, delivered {self.delivered}/{self.total}"

    def headers(self, acc: Account) -> dict[str, str]:
        token = tokens.mint(self.auth, subject=acc.user_id, user_id=acc.user_id, company_id="c-chaos",
                            scopes=["accounts:read", "accounts:write", "mail:read"])
        return {"Authorization": f"Bearer {token}"}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{PORTS[name]}"

    # -- set-up --
    def start_services(self) -> None:
        for name, port in PORTS.items():
            self.procs.start(name, port, self.env, self.log_dir)
        self.procs.wait_healthy(timeout=180)

    def seed_crm(self) -> None:
        persons = [PersonUpserted(person_id=f"p-{k}", name=f"Person {k}", emails=[person_email(k)]) for k in range(PERSONS)]
        users = [UserUpserted(user_id=a.user_id, name=f"Chaos {a.index}", emails=[a.email]) for a in self.accounts]
        ns = self.namespace
        asyncio.run(produce(f"{ns}{Topic.CRM_PERSONS}", [(p.person_id.encode(), p.model_dump_json().encode()) for p in persons]))
        asyncio.run(produce(f"{ns}{Topic.CRM_USERS}", [(u.user_id.encode(), u.model_dump_json().encode()) for u in users]))
        from .kafka_tools import wait_group_caught_up
        for topic in (Topic.CRM_PERSONS, Topic.CRM_USERS):
            asyncio.run(wait_group_caught_up(KAFKA, f"{ns}maillink-matcher", f"{ns}{topic}", timeout=180))

    def seed_mailboxes(self, maildir: Maildir, share: float) -> list[tuple[Account, Message]]:
        """Creates the users and delivers the first `share`; returns the rest, interleaved, to trickle in."""
        rest: list[tuple[Account, Message]] = []
        for acc in self.accounts:
            sh("bash", str(ROOT / "deploy/local/dovecot.sh"), "adduser", acc.email, acc.password, env=infra_env())
            conn = imap_login(acc)  # the first login makes the maildir and its Sent folder
            conn.select("Sent")
            conn.logout()
            cut = int(len(acc.messages) * share)
            for m in acc.messages[:cut]:
                maildir.deliver(acc.email, m)
                self.delivered += 1
            rest.extend((acc, m) for m in acc.messages[cut:])
        self.rng.shuffle(rest)
        rest.sort(key=lambda am: int(am[1].token.split("-")[1]))  # each account's order kept, accounts interleaved
        return rest

    def connect(self, acc: Account) -> None:
        response = httpx.post(f"{self.url('ingest')}/accounts", headers=self.headers(acc), timeout=30, json={
            "email": acc.email, "password": acc.password, "imap_host": "127.0.0.1", "imap_port": IMAP_PORT,
            "security": "plain", "first_sync_days": 30})
        response.raise_for_status()
        acc.account_id = response.json()["account_id"]

    def status(self, acc: Account, timeout: float = 10) -> dict | None:
        try:
            response = httpx.get(f"{self.url('ingest')}/accounts/{acc.account_id}", headers=self.headers(acc),
                                 timeout=timeout)
            return response.json() if response.status_code == 200 else None
        except httpx.HTTPError:
            return None

    # -- faults --
    def kill(self, name: str) -> None:
        with self.lock:  # the supervisor must not restart it first
            proc = self.procs.running[name].process
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            self.fault(f"SIGKILL {name} (pid {proc.pid})")
            time.sleep(self.rng.uniform(0.5, 3))
            self.procs.running.pop(name)
            self.procs.start(name, PORTS[name], self.env, self.log_dir)
        # Not waited for here: the next fault keeps its random moment (on a loaded machine a restart
        # takes 10-30 s), even if it finds this service still starting.
        threading.Thread(target=self._wait_healthy, args=(name,), daemon=True).start()

    def supervise(self, stop: threading.Event) -> None:
        """What a process manager (systemd Restart=, Kubernetes) does: a service that exits by itself is
        started again. Each such exit is reported: it is not a fault injected but a service's reaction
        to one (e.g. a service started while the broker is down gives up with exit code 3)."""
        while not stop.wait(2):
            with self.lock:
                for name, svc in list(self.procs.running.items()):
                    code = svc.process.poll()
                    if code is not None:
                        self.exits.append((self.t(), f"{name} exited by itself (code {code}); restarted"))
                        self.say(f"  {name} exited by itself (code {code}); restarting it")
                        self.procs.start(name, PORTS[name], self.env, self.log_dir)

    def _wait_healthy(self, name: str, timeout: float = 120) -> None:
        svc = self.procs.running[name]
        try:
            ServiceSet({name: svc}).wait_healthy(timeout=timeout)
            self.say(f"  {name} healthy again")
        except (TimeoutError, RuntimeError) as exc:
            if svc.process.returncode == -signal.SIGKILL:
                self.say(f"  {name} killed again before it was healthy")
            else:
                self.say(f"  {name} not healthy: {str(exc)[:300]}")

    def restart_kafka(self) -> None:
        self.fault("Kafka broker stopped")
        sh("bash", str(ROOT / "deploy/local/kafka.sh"), "stop", env=infra_env())
        time.sleep(self.rng.uniform(2, 6))
        sh("bash", str(ROOT / "deploy/local/kafka.sh"), "start", env=infra_env())
        self.fault("Kafka broker started again")

    def restart_store(self) -> None:
        self.fault("store stopped")
        sh("bash", str(ROOT / "deploy/local/store.sh"), "stop", env=infra_env())
        time.sleep(self.rng.uniform(2, 6))
        sh("bash", str(ROOT / "deploy/local/store.sh"), "start", env=infra_env())
        self.fault("store started again")

    def kick(self) -> None:
        kicked = doveadm("kick", "chaos*", check=False).stdout.split()
        users = sum(1 for word in kicked if word.startswith("chaos") and "@" in word)
        self.fault(f"doveadm kick chaos* ({users} users' IMAP connections dropped)")

    def uidvalidity(self) -> None:
        acc = self.rng.choice(self.accounts)
        now = doveadm("mailbox", "status", "-u", acc.email, "uidvalidity", "INBOX").stdout.split("=")[-1].strip()
        new = int(now) + self.rng.randrange(1, 1000)
        doveadm("mailbox", "update", "-u", acc.email, "--uid-validity", str(new), "INBOX")
        self.fault(f"UIDVALIDITY of {acc.email}/INBOX {now} -> {new} (doveadm mailbox update, UIDs kept)")

    def uidvalidity_reset(self) -> None:
        """A real UIDVALIDITY reset, as after a server migration: Dovecot's UID list and index of one
        INBOX are deleted and the messages' files renamed in reverse order, so Dovecot rebuilds the
        folder with a new UIDVALIDITY and new UIDs (its newest UIDs now hold other messages, which
        ingest's spurious-change check must see as a real change and re-map). The mailbox is made
        unreadable to Dovecot's vmail processes meanwhile, so no session sees it half-done."""
        acc = self.rng.choice(self.accounts)
        box = RUN_DIR / "dovecot" / "mail" / acc.email
        before = doveadm("mailbox", "status", "-u", acc.email, "uidvalidity", "INBOX").stdout.split("=")[-1].strip()
        os.chmod(box, 0)
        try:
            doveadm("kick", acc.email, check=False)
            for name in ("dovecot-uidlist", "dovecot.index", "dovecot.index.log", "dovecot.index.cache"):
                (box / name).unlink(missing_ok=True)
            files = sorted((p for sub in ("cur", "new") for p in (box / sub).iterdir()), key=lambda p: p.name)
            for rank, path in enumerate(files):
                flags = path.name.partition(":")[2]
                renamed = f"{2_000_000_000 - rank}.R{rank}.chaos{':' + flags if flags else ''}"
                os.rename(path, path.parent / renamed)
        finally:
            os.chmod(box, 0o700)
        after = doveadm("mailbox", "status", "-u", acc.email, "uidvalidity", "INBOX").stdout.split("=")[-1].strip()
        self.fault(f"UIDVALIDITY reset of {acc.email}/INBOX {before} -> {after} ({len(files)} messages renumbered)")

    def password_change(self) -> None:
        acc = self.rng.choice(self.accounts)
        acc.password = uuid.uuid4().hex
        sh("bash", str(ROOT / "deploy/local/dovecot.sh"), "adduser", acc.email, acc.password, env=infra_env())
        doveadm("kick", acc.email, check=False)  # open sessions would otherwise go on under the old password
        self.fault(f"password of {acc.email} changed (sessions kicked)")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = (self.status(acc) or {}).get("state")
            if state == "needs_reauth":
                self.say(f"  {acc.email}: needs_reauth")
                break
            time.sleep(1)
        else:
            self.say(f"  {acc.email}: never reported needs_reauth (state {state})")
        for _ in range(30):
            try:
                response = httpx.patch(f"{self.url('ingest')}/accounts/{acc.account_id}", headers=self.headers(acc),
                                       json={"password": acc.password}, timeout=30)
                if response.status_code == 202:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        self.fault(f"re-authenticated {acc.email} via PATCH /accounts/{{id}} ({response.status_code})")

    def blobs_read_only(self) -> None:
        BLOBS.mkdir(parents=True, exist_ok=True)
        sh("mount", "--bind", str(BLOBS), str(BLOBS))
        sh("mount", "-o", "remount,ro,bind", str(BLOBS))
        self.fault("blob store read-only (bind mount ro)")
        try:
            time.sleep(30)
        finally:
            sh("umount", str(BLOBS))
        self.fault("blob store writable again")

    def fault_plan(self) -> list[tuple[float, str, object]]:
        plan = [(name, lambda n=name: self.kill(n)) for name, times in KILLS.items() for _ in range(times)]
        plan += [("kafka", self.restart_kafka), ("store", self.restart_store), ("kick", self.kick),
                 ("kick", self.kick), ("uidvalidity", self.uidvalidity),
                 ("uidvalidity-reset", self.uidvalidity_reset), ("password", self.password_change),
                 ("blobs", self.blobs_read_only)]
        return sorted((self.rng.uniform(0.03, 0.85) * self.window_s, name, fn) for name, fn in plan)

    # -- settle and audit --
    def settled(self, counts: dict[str, int]) -> bool:
        for acc in self.accounts:
            status = self.status(acc)
            # At least the mailbox's count: ingest's counter keeps what a UIDVALIDITY re-map delivered again.
            if not status or status["state"] != "synced" or status["messages_synced"] < counts[acc.email]:
                return False
        received = f"{self.namespace}{Topic.MESSAGE_RECEIVED}"
        try:
            lag = asyncio.run(group_lag(f"{self.namespace}maillink-matcher", received))
        except Exception:  # noqa: BLE001 - a broker hiccup: not settled yet
            return False
        if lag and time.monotonic() - self.lag_said > 30:
            self.lag_said = time.monotonic()
            self.say(f"  matcher lag on {received}: {lag}")
        return lag == 0

    def store_docs(self) -> list[dict]:
        from pymongo import MongoClient
        # A bounded wait: a wedged store must fail the audit, not hang it.
        client = MongoClient(MONGODB_URL, serverSelectionTimeoutMS=10000, socketTimeoutMS=120000)
        try:
            db = client[f"{self.namespace.replace('.', '_')}maillink_matcher"]
            return list(db["messages"].find({}, {"subject": 1, "account_id": 1}))
        finally:
            client.close()

    def verdict(self):
        mailbox: dict[str, Expected] = {}
        held = 0
        for acc in self.accounts:
            person = {m.token: m.person_id for m in acc.messages}
            found = mailbox_tokens(acc)
            held += sum(found.values())
            for token in found:
                mailbox[token] = Expected(acc.account_id, person[token])
        if held != len(mailbox) or len(mailbox) != self.total:
            self.say(f"WARNING: the mailboxes hold {held} messages ({len(mailbox)} distinct) of {self.total} seeded")
        ns = self.namespace
        linked = asyncio.run(read_to_end(f"{ns}{Topic.MESSAGE_LINKED}"))
        unlinked = asyncio.run(read_to_end(f"{ns}{Topic.MESSAGE_UNLINKED}"))
        dead = asyncio.run(read_to_end(f"{ns}{Topic.MESSAGE_RECEIVED}.dlq"))
        self.say(f"audit read {len(linked)} linked records, {len(unlinked)} unlinked, {len(dead)} dead-lettered received")
        if unlinked:
            from collections import Counter
            reasons = Counter(r.get("reason") for r in unlinked)
            self.say(f"  unlinked records by reason: {dict(reasons)} (a later revision re-links a key)")
        return audit(mailbox, linked, unlinked, self.store_docs()), dead

    def run(self) -> int:
        maildir = Maildir()
        self.say(f"starting the five services; generating {self.total} messages for {len(self.accounts)} accounts "
                 f"(namespace {self.namespace})")
        for name, port in PORTS.items():  # they start while the mail is generated
            self.procs.start(name, port, self.env, self.log_dir)
        generate(self.accounts, self.total, self.rng)
        self.procs.wait_healthy(timeout=180)
        self.say("five services healthy")
        self.seed_crm()
        self.say(f"CRM: {PERSONS} persons, {len(self.accounts)} users, matcher caught up")
        rest = self.seed_mailboxes(maildir, share=float(os.environ.get("CHAOS_INITIAL_SHARE", "0.4")))
        self.say(f"delivered {self.total - len(rest)} messages; {len(rest)} more arrive during the fault window")
        for acc in self.accounts:
            self.connect(acc)
        self.say(f"connected {len(self.accounts)} accounts through POST /accounts")

        window_start = time.monotonic()
        stop = threading.Event()

        def trickle() -> None:
            pace = self.window_s * 0.8 / max(1, len(rest))
            for i, (acc, message) in enumerate(rest):
                due = window_start + i * pace
                if stop.wait(max(0.0, due - time.monotonic())):
                    return
                maildir.deliver(acc.email, message)
                self.delivered += 1

        feeder = threading.Thread(target=trickle, daemon=True)
        feeder.start()
        supervisor = threading.Thread(target=self.supervise, args=(stop,), daemon=True)
        supervisor.start()
        for at, name, fn in self.fault_plan():
            wait = window_start + at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - a fault that could not be injected is reported, not fatal
                self.fault(f"{name} could not be injected: {exc!r}"[:300])
        feeder.join()
        try:
            self.procs.wait_healthy(timeout=300)
        except (TimeoutError, RuntimeError) as exc:
            self.say(f"WARNING: not every service is healthy: {str(exc)[:300]}")
        self.say("all faults injected and all mail delivered; waiting for the pipeline to settle")

        counts = {a.email: len(a.messages) for a in self.accounts}
        settle_limit = float(os.environ.get("CHAOS_SETTLE_S", "300"))
        deadline = time.monotonic() + settle_limit
        # Settled twice, 5 s apart: one quiet moment between two batches is not the end of the flow.
        while not (self.settled(counts) and time.sleep(5) is None and self.settled(counts)):
            if time.monotonic() > deadline:
                self.say(f"did not settle within {settle_limit:.0f}s; auditing anyway")
                for acc in self.accounts:
                    s = self.status(acc) or {}
                    self.say(f"  {acc.email}: {s.get('state')} synced={s.get('messages_synced')}/{counts[acc.email]} "
                             f"error={s.get('error')}")
                break
            time.sleep(3)
        else:
            self.say("settled: every account synced, matcher lag 0")
        stop.set()
        supervisor.join()
        verdict, dead = self.verdict()
        for service in PORTS:
            if self.procs.running[service].process.poll() is not None:
                self.say(f"WARNING: {service} exited by itself (see {self.log_dir}/{service}.log)")
        print("\nfaults injected (seconds since start):")
        for at, text in self.faults:
            print(f"  {at:7.1f}s  {text}")
        if self.exits:
            print("services that exited by themselves (restarted by the run, as a process manager would):")
            for at, text in self.exits:
                print(f"  {at:7.1f}s  {text}")
        if verdict.lost:
            print(f"lost (first 10): {verdict.lost[:10]}")
        if verdict.duplicated:
            print(f"duplicated (first 10): {verdict.duplicated[:10]}")
        if dead:
            print(f"dead-lettered received events: {len(dead)} (first reason: {str(dead[0].get('error'))[:200]})")
        print(f"duration {self.t():.0f}s")
        print(verdict.line(), flush=True)
        return 0 if verdict.ok else 1

    def clean_up(self) -> None:
        self.procs.stop()
        if os.environ.get("CHAOS_KEEP"):
            return
        try:
            asyncio.run(drop_namespace(KAFKA, MONGODB_URL, self.namespace, None))
        except Exception as exc:  # noqa: BLE001 - best effort: the verdict is already in
            print(f"clean-up of {self.namespace} failed: {exc!r}")
        for acc in self.accounts:
            sh("rm", "-rf", str(RUN_DIR / "dovecot" / "mail" / acc.email), str(RUN_DIR / "dovecot" / "users.d" / acc.email),
               check=False)


def main() -> None:
    chaos = Chaos(messages=env_int("CHAOS_MESSAGES", 20_000), accounts=env_int("CHAOS_ACCOUNTS", 4),
                  window_s=float(os.environ.get("CHAOS_WINDOW_S") or 360), seed=env_int("CHAOS_SEED", int(time.time())))
    try:
        code = chaos.run()
    finally:
        chaos.clean_up()
    sys.exit(code)


if __name__ == "__main__":
    main()
