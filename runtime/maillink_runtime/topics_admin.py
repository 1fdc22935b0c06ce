"""Creates the topics a service uses, if missing (compacted where the contract says so)."""
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from maillink_schemas.topics import COMPACTED, dead_letter_topic


async def ensure_topics(bootstrap: str, namespace: str, names: list[str], partitions: int = 6,
                        replication: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = []
        for name in names:
            for full, compact in ((namespace + name, name in COMPACTED), (namespace + dead_letter_topic(name), False)):
                if full not in existing:
                    config = {"cleanup.policy": "compact"} if compact else {}
                    wanted.append(NewTopic(full, partitions, replication, topic_configs=config))
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another instance created them first
    finally:
        await admin.close()
