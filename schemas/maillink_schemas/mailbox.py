"""What ingest did with a mailbox command (sync-back): the result event of mail.mailbox.command.v1."""
from enum import StrEnum

from pydantic import Field

from .base import Event
from .mail import MailboxLocation
from .matcher import MailboxAction


class CommandOutcome(StrEnum):
    DONE = "done"            # the mailbox now reflects the command (also when nothing needed changing)
    SKIPPED = "skipped"      # sync-back is off for the account's owner: the mailbox was not touched
    NOT_FOUND = "not_found"  # no stored location of the message exists on the server any more
    FAILED = "failed"        # the server refused, or the account is unknown; `error` says why


class MailboxCommandCompleted(Event):
    """The result of one mailbox command; published once per command id (again, with the same
    event id, if the command is redelivered). Topic key: account id."""

    command_id: str
    account_id: str
    message_key: str
    action: MailboxAction
    outcome: CommandOutcome
    error: str | None = Field(default=None, description="Why it failed or was skipped, in words a person understands.")
    locations: list[MailboxLocation] = Field(default_factory=list, description="Where the message is now, as "
                                             "far as the command's effect is known (after a move: the new UIDs).")
