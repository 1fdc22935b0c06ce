"""Mailbox commands already applied, with their result: a redelivered command is answered from
here (the same result event, the same event id) instead of touching the mailbox again."""
from pymongo.asynchronous.database import AsyncDatabase

from maillink_schemas.mailbox import MailboxCommandCompleted


class CommandLog:
    def __init__(self, db: AsyncDatabase) -> None:
        self._col = db["mailbox_commands"]

    async def result(self, command_id: str) -> MailboxCommandCompleted | None:
        doc = await self._col.find_one({"_id": command_id})
        return MailboxCommandCompleted.model_validate(doc["result"]) if doc else None

    async def done(self, result: MailboxCommandCompleted) -> None:
        await self._col.replace_one({"_id": result.command_id},
                                    {"_id": result.command_id, "account_id": result.account_id,
                                     "result": result.model_dump(mode="json")}, upsert=True)
