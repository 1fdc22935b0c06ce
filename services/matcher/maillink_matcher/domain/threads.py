"""Which conversation a message belongs to. Pure.

Threads come from Message-ID / In-Reply-To / References, or the provider's own thread id where
there is one (Gmail X-GM-THRID). Never from the subject: "Re: Invoice" from two customers is two
conversations.

Every id a message mentions (its own and the ones it replies to) is remembered with the thread,
so a chain that arrives newest first, carrying In-Reply-To only, still lands in one thread: the
reply registers its parent's id before the parent arrives. When a message ties two known threads
together (a parent arriving after replies that had started their own thread), the threads merge
into the one with the smallest id; the other points to it from then on.
"""
from dataclasses import dataclass

from maillink_schemas.base import deterministic_id
from maillink_schemas.mail import Envelope


def ancestors(envelope: Envelope) -> list[str]:
    """Ids this message replies to, nearest first."""
    return list(dict.fromkeys([*envelope.in_reply_to, *reversed(envelope.references)]))


def mentioned_ids(envelope: Envelope) -> list[str]:
    """Its own Message-ID and every id it replies to."""
    own = [envelope.message_id] if envelope.message_id else []
    return list(dict.fromkeys([*own, *ancestors(envelope)]))[:50]


def root_thread_id(account_id: str, envelope: Envelope, provider_thread_id: str | None, message_key: str) -> str:
    """The thread id when no known message is referenced: derived from the oldest reference, so a
    root and its replies agree even when they arrive out of order."""
    if provider_thread_id:
        return deterministic_id("thread", account_id, "provider", provider_thread_id)
    root = (envelope.references[:1] or envelope.in_reply_to[:1] or [envelope.message_id or f"key:{message_key}"])[0]
    return deterministic_id("thread", account_id, root)


@dataclass(frozen=True)
class Placement:
    thread_id: str
    merged: frozenset[str]   # other threads folded into thread_id by this message


def place(candidate: str, known: set[str]) -> Placement:
    """`known`: the threads this message's ids (and its stored thread) already belong to."""
    threads = known | {candidate} if not known else known
    winner = min(threads)
    return Placement(winner, frozenset(threads - {winner}))
