"""Which conversation a message belongs to. Pure.

Threads come from Message-ID / In-Reply-To / References, or the provider's own thread id where
there is one (Gmail X-GM-THRID). Never from the subject: "Re: Invoice" from two customers is two
conversations.
"""
from maillink_schemas.base import deterministic_id
from maillink_schemas.mail import Envelope


def ancestors(envelope: Envelope) -> list[str]:
    """Ids this message replies to, nearest first."""
    return list(dict.fromkeys([*envelope.in_reply_to, *reversed(envelope.references)]))


def root_thread_id(account_id: str, envelope: Envelope, provider_thread_id: str | None, message_key: str) -> str:
    """The thread id when no known message is referenced: derived from the oldest reference, so a
    root and its replies agree even when they arrive out of order."""
    if provider_thread_id:
        return deterministic_id("thread", account_id, "provider", provider_thread_id)
    root = (envelope.references[:1] or envelope.in_reply_to[:1] or [envelope.message_id or f"key:{message_key}"])[0]
    return deterministic_id("thread", account_id, root)
