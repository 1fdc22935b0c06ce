"""crm.users.v1 -> the gateway's user projection (and a directory reload, so SMTP sees it)."""
from faststream.kafka.message import KafkaMessage

from maillink_schemas.crm import UserUpserted

from ..adapters.directory import Directory
from ..adapters.users import UserStore


def users_handler(users: UserStore, directory: Directory):
    async def on_crm_users(user: UserUpserted, _: KafkaMessage) -> None:
        if await users.upsert(user):
            await directory.reload()
    return on_crm_users
