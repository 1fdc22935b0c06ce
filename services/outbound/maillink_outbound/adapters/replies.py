"""What a reply needs to know about the message it answers: its Message-ID, References and
subject, by message key. Fed from mail.message.received.v1 and from outbound's own sends."""
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from maillink_schemas.mail import Envelope


class ReplyIndex:
    def __init__(self, db: AsyncDatabase) -> None:
        self._c, self._requests, self._outcomes = db["message_refs"], db["send_requests"], db["send_outcomes"]

    async def ensure_indexes(self) -> None:
        await self._requests.create_index("sent.message_key")

    async def remember(self, message_key: str, account_id: str, envelope: Envelope) -> None:
        fields = {"account_id": account_id, "message_id": envelope.message_id, "references": envelope.references,
                  "in_reply_to": envelope.in_reply_to, "subject": envelope.subject}
        try:
            await self._c.update_one({"_id": message_key}, {"$set": fields}, upsert=True)
        except DuplicateKeyError:
            # Quirk (FerretDB v1): two concurrent upserts of one key can both try the insert; the
            # loser's write is then a plain update (same content).
            await self._c.update_one({"_id": message_key}, {"$set": fields})

    async def get(self, message_key: str) -> dict | None:
        found = await self._c.find_one({"_id": message_key})
        if found is None:
            # Our own sent messages are not copied here (one write less per send): their request has it.
            sent = await self._requests.find_one({"sent.message_key": message_key, "state": "sent"}, {"sent": 1})
            if sent is None:   # sent by a batch and not settled yet: its outcome record has it
                sent = await self._outcomes.find_one({"sent.message_key": message_key, "state": "sent"}, {"sent": 1})
            if sent is not None:
                e = sent["sent"]["envelope"]
                found = {"message_id": e.get("message_id"), "references": e.get("references", []),
                         "in_reply_to": e.get("in_reply_to", []), "subject": e.get("subject", "")}
        return found
