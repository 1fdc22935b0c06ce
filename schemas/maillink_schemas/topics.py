"""The one registry of topic names. A name carries its contract's major version."""
from enum import StrEnum


class Topic(StrEnum):
    # Mailbox accounts: compacted, keyed by account id. Ingest instances split it by partition.
    ACCOUNT = "mail.account.v1"
    ACCOUNT_STATUS = "mail.account.status.v1"
    # Messages, keyed by account id so each mailbox's events stay in order.
    MESSAGE_RECEIVED = "mail.message.received.v1"
    MESSAGE_LINKED = "mail.message.linked.v1"
    MESSAGE_UNLINKED = "mail.message.unlinked.v1"
    MESSAGE_IGNORED = "mail.message.ignored.v1"
    MESSAGE_EXPUNGED = "mail.message.expunged.v1"
    MESSAGE_CHANGED = "mail.message.changed.v1"
    # Ingest's audit of one folder (reconciliation), keyed by account id.
    FOLDER_RECONCILED = "mail.folder.reconciled.v1"
    # Orders: thread links/visibility/deletes (keyed by account id), mailbox changes for ingest.
    THREAD_COMMAND = "mail.thread.command.v1"
    MAILBOX_COMMAND = "mail.mailbox.command.v1"
    # What ingest did with each mailbox command (sync-back), keyed by account id.
    MAILBOX_COMMAND_COMPLETED = "mail.mailbox.command.completed.v1"
    # Per-user and company mail settings: compacted, keyed by user:<id> / company:<id>.
    SETTINGS = "mail.settings.v1"
    # Internal to the matcher: re-resolve messages of a mailbox after a fact changed (account id).
    MATCHER_RECHECK = "mail.matcher.recheck.v1"
    # Sending (outbound) and tracking (tracker).
    SEND_REQUESTED = "mail.send.requested.v1"
    MESSAGE_SENT = "mail.message.sent.v1"
    SEND_FAILED = "mail.send.failed.v1"
    TRACKING_REGISTERED = "mail.tracking.registered.v1"
    TRACKING_OPENED = "mail.tracking.opened.v1"
    TRACKING_CLICKED = "mail.tracking.clicked.v1"
    TRACKING_MILESTONE = "mail.tracking.milestone.v1"
    # Smart Bcc (bcc-gateway): a user's verified alternative addresses, compacted, keyed by user id.
    USER_ADDRESSES = "mail.user.addresses.v1"
    # CRM projections: compacted topics produced by the CRM, keyed by record id.
    CRM_PERSONS = "crm.persons.v1"
    CRM_ORGANIZATIONS = "crm.organizations.v1"
    CRM_DEALS = "crm.deals.v1"
    CRM_LEADS = "crm.leads.v1"
    CRM_PROJECTS = "crm.projects.v1"
    CRM_USERS = "crm.users.v1"


def dead_letter_topic(source: str) -> str:
    """Where a consumer of `source` parks a message it cannot process, with the reason."""
    return f"{source}.dlq"


COMPACTED = frozenset({
    Topic.ACCOUNT, Topic.USER_ADDRESSES, Topic.SETTINGS, Topic.CRM_PERSONS, Topic.CRM_ORGANIZATIONS, Topic.CRM_DEALS,
    Topic.CRM_LEADS, Topic.CRM_PROJECTS, Topic.CRM_USERS,
})
