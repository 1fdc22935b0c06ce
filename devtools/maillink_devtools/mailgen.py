"""Builds realistic RFC 5322 messages: plain, multipart/alternative, with attachments, threaded."""
import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

WORDS = ("proposal pricing contract meeting renewal discount invoice schedule demo budget "
         "quarter licence onboarding timeline support integration pilot review call signed").split()


@dataclass
class Mail:
    sender: str
    to: list[str]
    subject: str
    body: str
    cc: list[str] = field(default_factory=list)
    date: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    html: bool = False
    attachment: bytes | None = None
    sender_name: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        msg = EmailMessage()
        msg["From"] = f"{self.sender_name} <{self.sender}>" if self.sender_name else self.sender
        msg["To"] = ", ".join(self.to)
        if self.cc:
            msg["Cc"] = ", ".join(self.cc)
        msg["Subject"] = self.subject
        msg["Date"] = format_datetime(self.date)
        msg["Message-ID"] = self.message_id or make_msgid(domain=self.sender.split("@")[1])
        if self.in_reply_to:
            msg["In-Reply-To"] = self.in_reply_to
        if self.references:
            msg["References"] = " ".join(self.references)
        for k, v in self.extra_headers.items():
            msg[k] = v
        msg.set_content(self.body)
        if self.html:
            msg.add_alternative(f"<html><body><p>{self.body}</p></body></html>", subtype="html")
        if self.attachment is not None:
            msg.add_attachment(self.attachment, maintype="application", subtype="pdf", filename="document.pdf")
        # Boundaries derived from the Message-ID instead of random ones: the same Mail is the same bytes.
        tag = hashlib.sha256(msg["Message-ID"].encode()).hexdigest()[:24]
        for i, part in enumerate(msg.walk()):
            if part.is_multipart():
                part.set_boundary(f"=_maillink_{tag}_{i}")
        return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


BENCH_ANCHOR = datetime(2026, 11, 1, tzinfo=timezone.utc)


def bench_mailbox(count: int, owner: str, seed: int = 7) -> list[bytes]:
    """The bench mix: plain, multipart/alternative, and 4 % with 10-200 KB attachments (~190 MB per 20k).

    Deterministic (fixed seed and dates), so a loaded mailbox can be recognised and reused."""
    rng = random.Random(seed)
    now = BENCH_ANCHOR
    out = []
    for i in range(count):
        kind = rng.random()
        mail = Mail(
            sender=f"contact{rng.randrange(500)}@customer{rng.randrange(50)}.example",
            to=[owner], subject=f"Re: {sentence(rng, 4)} #{i}",
            body="\n\n".join(sentence(rng, rng.randrange(30, 120)) for _ in range(rng.randrange(2, 6))),
            date=now - timedelta(minutes=count - i), html=0.04 <= kind < 0.55,
            message_id=f"<bench-{seed}-{i}@customer.example>",
        )
        if kind < 0.04:
            mail.attachment = rng.randbytes(rng.randrange(10_000, 200_000))
        out.append(mail.to_bytes())
    return out
