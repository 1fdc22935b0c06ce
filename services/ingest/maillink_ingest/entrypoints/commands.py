"""Consumers of sync-back: the owners' settings (mail.settings.v1) and the mailbox commands
(mail.mailbox.command.v1), whose results go to mail.mailbox.command.completed.v1."""
from faststream.kafka import KafkaBroker

from maillink_runtime import bus
from maillink_schemas.matcher import MailboxCommand, MailSettingsChanged
from maillink_schemas.topics import Topic

from ..sync.commands import CommandDeps, handle


def subscribe_sync_back(broker: KafkaBroker, topic, group_id: str, deps: CommandDeps) -> None:
    """`topic(name)` gives the deployment's topic name (namespace prefix)."""
    completed = topic(Topic.MAILBOX_COMMAND_COMPLETED)

    async def on_settings(settings: MailSettingsChanged, _raw) -> None:
        await deps.settings.apply(settings)

    async def on_mailbox_command(cmd: MailboxCommand, _raw) -> None:
        result = await handle(cmd, deps)
        # After the result is remembered: a crash here republishes the same event (same id) on redelivery.
        await bus.publish(broker, completed, result, key=result.account_id)

    bus.subscribe(broker, topic(Topic.SETTINGS), f"{group_id}-settings", MailSettingsChanged, on_settings)
    bus.subscribe(broker, topic(Topic.MAILBOX_COMMAND), f"{group_id}-commands", MailboxCommand, on_mailbox_command)
