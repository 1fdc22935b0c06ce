"""CPU per message of ingest's delivery parts, each timed alone on the bench mailbox's messages
(docs/ingest-sync.md, "Round 4"): `python -m maillink_devtools.profile_ingest_parts [--messages N]`."""
import argparse
import time
from datetime import datetime, timezone

from fast_mail_parser import parse_email

from maillink_ingest.domain.envelope import parse
from maillink_ingest.domain.identity import blob_id, body_digest
from maillink_ingest.domain.received import received_bytes, received_event
from maillink_ingest.imap.fetch import _internaldate
from maillink_schemas.accounts import AccountConfigured, ImapEndpoint, Security

from .mailgen import bench_mailbox


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=4000)
    msgs = bench_mailbox(parser.parse_args().messages, "bench@example.com")
    acc = AccountConfigured(event_id="b", occurred_at=datetime.now(timezone.utc), account_id="bench",
                            user_id="bench", email="bench@example.com",
                            imap=ImapEndpoint(host="h", port=1, security=Security.PLAIN), username="u",
                            secret_ciphertext="x")
    now = datetime.now(timezone.utc)

    def timed(name, items, f):
        started = time.perf_counter()
        out = [f(item) for item in items]
        print(f"{name:44} {1000 * (time.perf_counter() - started) / len(items):.4f} ms/msg")
        return out

    timed("fast_mail_parser.parse_email", msgs, parse_email)
    parsed = timed("envelope.parse (incl. fast-mail-parser)", msgs, parse)
    ids = timed("blob_id (sha256)", msgs, blob_id)
    timed("body_digest (message key)", msgs, body_digest)
    timed("INTERNALDATE", ["27-Nov-2026 15:20:47 +0100"] * len(msgs), _internaldate)
    events = timed("received_event (pydantic, incl. body_digest)", list(zip(msgs, parsed, ids)),
                   lambda m: received_event(acc, "INBOX", 1, 7, ("\\Seen",), now, False, m[0], m[2], m[1]))
    timed("model_dump_json", events, lambda e: e.model_dump_json().encode())
    timed("received_bytes (no model, incl. body_digest)", list(zip(msgs, parsed, ids)),
          lambda m: received_bytes(acc, "INBOX", 1, 7, ("\\Seen",), now, False, m[0], m[2], m[1]))


if __name__ == "__main__":
    main()
