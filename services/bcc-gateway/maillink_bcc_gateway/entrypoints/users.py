"""crm.users.v1 -> the gateway's user projection, applied at once to the in-memory directory."""
from faststream.kafka.message import KafkaMessage

from maillink_schemas.crm import UserUpserted

from ..adapters.directory import Directory
from ..adapters.users import UserStore


def users_handler(users: UserStore, directory: Directory):
    async def on_crm_users(user: UserUpserted, _: KafkaMessage) -> None:
        stored = await users.upsert(user)
        if stored is not None:
            directory.apply_user(stored)
    return on_crm_users
