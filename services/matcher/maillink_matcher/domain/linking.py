"""Which CRM records a message is linked to. Pure.

- Always: every person whose address appears on the message (the user's own addresses excluded).
- Deals (Automatic mode): a thread keeps the deal it already has, as long as that deal is open;
  otherwise it gets the matched persons' open deal only when exactly one exists. Several open
  deals leave the choice to the user. Bulk and automated mail is never auto-linked to a deal.
- Won, lost or deleted deals receive no new links.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Links:
    person_ids: list[str]
    deal_id: str | None


def decide(person_ids: list[str], open_deal_ids: set[str], thread_deal_id: str | None, thread_deal_open: bool,
           is_bulk: bool, automatic: bool = True) -> Links:
    persons = sorted(set(person_ids))
    if thread_deal_id is not None:
        return Links(persons, thread_deal_id if thread_deal_open else None)
    if not automatic or is_bulk or len(open_deal_ids) != 1:
        return Links(persons, None)
    return Links(persons, next(iter(open_deal_ids)))
