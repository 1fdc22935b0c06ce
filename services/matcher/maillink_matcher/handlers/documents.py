"""The stored message document: built from a received event, merged with later sightings, and
turned into the events that publish its current resolution."""
from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.mail import (BulkSignals, MessageIgnored, MessageLinked, MessageReceived, MessageUnlinked,
                                   UnlinkReason)

from ..domain.facts import MessageFacts, Status
from ..domain.threads import mentioned_ids

ROLES = ("from", "sender", "reply_to", "to", "cc", "bcc")


def bulk_reason(bulk: BulkSignals) -> str | None:
    if bulk.list_unsubscribe:
        return "List-Unsubscribe"
    if bulk.list_id:
        return "List-Id"
    if (bulk.precedence or "").lower() in {"bulk", "list", "junk"}:
        return f"Precedence: {bulk.precedence}"
    if bulk.auto_submitted:
        return f"Auto-Submitted: {bulk.auto_submitted}"
    return None


def _addresses(event: MessageReceived) -> dict[str, list[dict]]:
    env = event.envelope
    groups = {"from": env.from_, "sender": [env.sender] if env.sender else [], "reply_to": env.reply_to,
              "to": env.to, "cc": env.cc, "bcc": env.bcc}
    return {role: [{"email": a.email.lower(), "name": a.name} for a in group] for role, group in groups.items()}


def new_document(event: MessageReceived) -> dict:
    env = event.envelope
    doc = {
        "_id": event.message_key, "account_id": event.account_id, "user_id": event.user_id,
        "message_id": env.message_id, "ids": mentioned_ids(env), "provider_thread_id": event.provider_thread_id,
        "subject": env.subject, "date": env.date, "sort_date": env.date or event.internal_date or event.occurred_at,
        "arrived_at": event.occurred_at, "direction": event.direction.value, "source": event.source.value,
        **_addresses(event), "account_addresses": sorted({a.lower() for a in event.account_addresses}),
        "snippet": event.snippet, "has_attachments": event.has_attachments, "bulk_reason": bulk_reason(event.bulk),
        "raw": event.raw.model_dump() if event.raw.blob_id else None, "locations": [], "deleted": False, "expunge_seen": False,
        "revision": 0, "published_revision": 0, "status": None, "created_at": utcnow(),
    }
    doc["addresses"] = all_addresses(doc)
    return doc


def all_addresses(doc: dict) -> list[str]:
    return sorted({a["email"] for role in ROLES for a in doc.get(role, [])})


def merge_sighting(doc: dict, event: MessageReceived) -> bool:
    """A later copy of a stored message (another folder, a Bcc copy, a header variant with another
    Cc, a redelivery): keep every participant and the earliest arrival. True if participants changed."""
    before = doc["addresses"]
    for role, group in _addresses(event).items():
        known = {a["email"] for a in doc.get(role, [])}
        doc[role] = [*doc.get(role, []), *[a for a in group if a["email"] not in known]]
    doc["addresses"] = all_addresses(doc)
    if not doc.get("raw") and event.raw.blob_id:   # first seen without bytes (outbound's sent event)
        doc["raw"] = event.raw.model_dump()
    doc["account_addresses"] = sorted({*doc.get("account_addresses", []), *(a.lower() for a in event.account_addresses)})
    if event.occurred_at < doc["arrived_at"]:
        doc["arrived_at"] = event.occurred_at
    return doc["addresses"] != before


def facts_of(doc: dict) -> MessageFacts:
    senders = tuple(a["email"] for role in ("from", "sender") for a in doc.get(role, []))
    recipients = tuple(a["email"] for role in ("reply_to", "to", "cc", "bcc") for a in doc.get(role, []))
    return MessageFacts(doc["_id"], doc["account_id"], doc["user_id"], senders, recipients, doc["arrived_at"],
                        doc.get("subject", ""), doc.get("snippet", ""), doc.get("bulk_reason"),
                        tuple(doc.get("account_addresses", [])), doc.get("deleted", False),
                        bool(doc.get("expunge_seen")) and not doc.get("locations"))


def events_for(doc: dict) -> list[tuple[str, object]]:
    """(topic name, event) publishing the document's current revision."""
    revision, status = doc["revision"], doc["status"]
    base = dict(occurred_at=utcnow(), message_key=doc["_id"], account_id=doc["account_id"], user_id=doc["user_id"],
                thread_id=doc["thread_id"])
    reasons = doc.get("reasons", [])
    if status == Status.ACTIVE:
        return [("linked", MessageLinked(
            event_id=deterministic_id("linked", doc["_id"], str(revision)), person_ids=doc["person_ids"],
            deal_id=doc.get("deal_id"), lead_id=doc.get("lead_id"), project_id=doc.get("project_id"),
            visibility=doc["visibility"], direction=doc["direction"], subject=doc.get("subject", ""),
            date=doc.get("date"), revision=revision, reasons=reasons, **base))]
    events: list[tuple[str, object]] = []
    if doc.get("was_linked"):
        reason = {Status.IGNORED: UnlinkReason.BLOCKED, Status.DELETED: UnlinkReason.DELETED}.get(
            status, UnlinkReason.EXPUNGED)
        events.append(("unlinked", MessageUnlinked(event_id=deterministic_id("unlinked", doc["_id"], str(revision)),
                                                   revision=revision, reason=reason, reasons=reasons, **base)))
    if status == Status.IGNORED:
        events.append(("ignored", MessageIgnored(event_id=deterministic_id("ignored", doc["_id"], str(revision)),
                                                 revision=revision, reasons=reasons, **base)))
    return events
