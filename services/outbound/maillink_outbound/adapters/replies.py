"""What a reply needs to know about the message it answers: its Message-ID, References and
subject, by message key. Fed from mail.message.received.v1 and from outbound's own sends."""
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from maillink_schemas.mail import Envelope


class ReplyIndex:
    def __init__(self, db: AsyncDatabase) -> None:
        self._c = db["message_refs"]

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
        return await self._c.find_one({"_id": message_key})
