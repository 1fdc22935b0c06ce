"""The blocklist rule (MISSION.md §13). Pure.

Entries are exact addresses (`someone@domain.com`) or domains (`@domain.com`). A domain entry
also matches its subdomains: `@acme.com` blocks `x@eu.acme.com` (but not `x@notacme.com`).
A message is blocked only if its sender is blocked and no other participant is un-blocked; the
syncing user's own addresses do not count as participants.
"""


def normalise(entry: str) -> str:
    entry = entry.strip().lower()
    return entry if entry.startswith("@") or "@" in entry else f"@{entry}"


def matching_entry(address: str, entries: frozenset[str]) -> str | None:
    """The blocklist entry that blocks `address`, or None."""
    address = address.lower()
    if address in entries:
        return address
    domain = address.rpartition("@")[2]
    parts = domain.split(".")
    for i in range(len(parts) - 1):  # eu.acme.com, then acme.com (never the bare TLD)
        entry = "@" + ".".join(parts[i:])
        if entry in entries:
            return entry
    return None


def blocked_by(senders: list[str], others: list[str], entries: frozenset[str]) -> str | None:
    """The entry that blocks the message under the sole-sender rule, or None if it is not blocked.

    `senders` and `others` exclude the user's own addresses already."""
    if not senders or not entries:
        return None
    hits = [matching_entry(s, entries) for s in senders]
    if any(h is None for h in hits):
        return None
    if any(matching_entry(o, entries) is None for o in others if o not in senders):
        return None
    return hits[0]
