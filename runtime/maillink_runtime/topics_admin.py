"""Creates the topics a service uses, if missing (compacted where the contract says so), with the
partitions, replication factor and min.insync.replicas of the deployment's profile.

Only missing topics are created: an existing topic keeps its layout (changing partitions re-keys
accounts onto other partitions, so that is an operator's decision, not a side effect of a start).
"""
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from maillink_schemas.topics import COMPACTED, dead_letter_topic

from .kafka_conn import client_options
from .settings import ServiceSettings


def new_topics(settings: ServiceSettings, names: list[str], existing: set[str]) -> list[NewTopic]:
    wanted = []
    for name in names:
        for full, compact in ((settings.topic(name), name in COMPACTED),
                              (settings.topic(dead_letter_topic(name)), False)):
            if full not in existing:
                # With acks=all, min.insync.replicas is what makes "acknowledged" mean "on that many brokers".
                config = {"min.insync.replicas": str(settings.topic_min_insync_replicas)}
                if compact:
                    config["cleanup.policy"] = "compact"
                wanted.append(NewTopic(full, settings.topic_partitions, settings.topic_replication_factor,
                                       topic_configs=config))
    return wanted


async def ensure_topics(settings: ServiceSettings, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(**client_options(settings))
    try:
        await admin.start()
        wanted = new_topics(settings, names, set(await admin.list_topics()))
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another instance created them first
    finally:
        await admin.close()
