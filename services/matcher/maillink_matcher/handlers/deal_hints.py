"""Smart Bcc deal hints (`MessageReceived.deal_hint`): loads what the pure judgement
(domain/deal_hint.py) needs for a batch of hinted messages, in two `_id` lookups.

The mailbox writer (handlers/mail.py) applies an accepted hint to the message's thread as an owner
decision, and records on the thread which message's hint it applied (`deal_hints`), so a redelivery
or a re-check does not apply it again over a later decision of the owner. Threads are written after
messages, so a crash in between leaves the hint unrecorded and the redelivered batch applies it
again, to the same effect. A refused hint is kept on the message with its reason.
"""
from ..domain.deal_hint import HintVerdict, judge_hint
from ..domain.resolve import record_from
from ..domain.visibility import Viewer
from ..ports import CrmPort


def hint_of(doc: dict) -> str | None:
    return (doc.get("deal_hint") or {}).get("deal_id")


async def judge_hints(docs: list[dict], crm: CrmPort) -> list[tuple[dict, HintVerdict]]:
    if not docs:
        return []
    deals = await crm.records("deal", sorted({hint_of(d) for d in docs}))
    users = await crm.records("user", sorted({d["user_id"] for d in docs}))
    verdicts = []
    for doc in docs:
        hint, user = hint_of(doc), users.get(doc["user_id"])
        if user and user.get("deleted"):
            user = None
        company = (user or {}).get("company_id") or doc["deal_hint"].get("company_id")
        viewer = Viewer(doc["user_id"], company, frozenset(user.get("groups", [])),
                        frozenset(user.get("visible_record_ids", [])), bool(user.get("is_admin"))) if user else None
        deal = deals.get(hint)
        verdicts.append((doc, judge_hint(hint, record_from("deal", deal) if deal else None,
                                         (deal or {}).get("company_id"), company, viewer)))
    return verdicts


def refused_reasons(doc: dict) -> list[dict]:
    """The reason a hint was refused, to stand with the message's other reasons."""
    refused = (doc.get("deal_hint") or {}).get("refused")
    return [refused] if refused else []
