"""A Smart Bcc deal-specific address (company-7f3a+deal-123@…) names the deal its message belongs
to: the thread links to that deal whatever the automatic rules say, as if its owner had chosen it.
Pure: whether the named deal may take the message, and why (in a code and in words).

The hint is refused, with its reason, when the deal is not in the CRM (or was deleted), when it
belongs to another company than the message's owner, when the owner may not see it (its
visibility group), or when it is won or lost (closed deals receive no new messages, as always).
A refused hint leaves the thread to the automatic rules.
"""
from dataclasses import dataclass

from maillink_schemas.mail import Reason

from .facts import Record
from .visibility import Viewer, may_see_record


@dataclass(frozen=True)
class HintVerdict:
    deal_id: str | None   # the deal the thread takes; None when the hint is refused
    reason: Reason


def judge_hint(hint: str, deal: Record | None, deal_company: str | None, owner_company: str | None,
               owner: Viewer | None) -> HintVerdict:
    """`deal` is the CRM record the hint names (None: unknown); `owner_company` the company of the
    message's owner; `owner` the owner as a viewer, for the deal's visibility group (None when
    crm.users has not told us about the user yet: then only the company is checked)."""
    named = f"deal {deal.title or hint}" if deal else f"deal {hint}"
    prefix = f"not linked to {named} named by the Smart Bcc address"
    if deal is None:
        return HintVerdict(None, Reason(code="deal.hint_unknown", text=f"{prefix}: there is no such deal in the CRM"))
    if deal.closed_as == "deleted":
        return HintVerdict(None, Reason(code="deal.hint_unknown", text=f"{prefix}: it was deleted"))
    if deal_company is not None and deal_company != owner_company:
        return HintVerdict(None, Reason(code="deal.hint_other_company",
                                        text=f"{prefix}: it is not a deal of your company"))
    if owner is not None and not may_see_record(owner, deal):
        return HintVerdict(None, Reason(code="deal.hint_not_visible", text=f"{prefix}: you may not see it"))
    if not deal.open:
        return HintVerdict(None, Reason(code="deal.hint_closed",
                                        text=f"{prefix}: it is {deal.closed_as} and receives no new messages"))
    return HintVerdict(deal.record_id, Reason(code="deal.smart_bcc", text=f"linked to {named} because the message "
                                              "was sent to that deal's Smart Bcc address"))
