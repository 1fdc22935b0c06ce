"""Who takes part in a message. Pure."""
from maillink_schemas.mail import Envelope


def participants(envelope: Envelope, own_addresses: set[str]) -> list[str]:
    """Every address on the message except the syncing user's own, in header order, without repeats."""
    seen: dict[str, None] = {}
    groups = [envelope.from_, [envelope.sender] if envelope.sender else [], envelope.reply_to,
              envelope.to, envelope.cc, envelope.bcc]
    for group in groups:
        for address in group:
            email = address.email.lower()
            if email not in own_addresses:
                seen.setdefault(email, None)
    return list(seen)
