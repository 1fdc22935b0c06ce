"""Which contract travels on which topic: the source of the exported JSON Schema and AsyncAPI."""
from pydantic import BaseModel

from . import accounts, bcc, crm, mail, mailbox, matcher, outbound, tracking
from .dead_letter import DeadLettered
from .topics import Topic

TOPIC_MODELS: dict[str, type[BaseModel]] = {
    Topic.ACCOUNT: accounts.AccountConfigured,
    Topic.ACCOUNT_STATUS: accounts.AccountStatusChanged,
    Topic.MESSAGE_RECEIVED: mail.MessageReceived,
    Topic.MESSAGE_LINKED: mail.MessageLinked,
    Topic.MESSAGE_UNLINKED: mail.MessageUnlinked,
    Topic.MESSAGE_IGNORED: mail.MessageIgnored,
    Topic.MESSAGE_EXPUNGED: mail.MessageExpunged,
    Topic.MESSAGE_CHANGED: mail.MessageChanged,
    Topic.FOLDER_RECONCILED: mail.FolderReconciled,
    Topic.THREAD_COMMAND: matcher.ThreadCommand,
    Topic.MAILBOX_COMMAND: matcher.MailboxCommand,
    Topic.MAILBOX_COMMAND_COMPLETED: mailbox.MailboxCommandCompleted,
    Topic.SETTINGS: matcher.MailSettingsChanged,
    Topic.MATCHER_RECHECK: matcher.RecheckRequested,
    Topic.SEND_REQUESTED: outbound.SendRequested,
    Topic.MESSAGE_SENT: outbound.MessageSent,
    Topic.SEND_FAILED: outbound.SendFailed,
    Topic.TRACKING_REGISTERED: tracking.TrackingRegistered,
    Topic.TRACKING_OPENED: tracking.TrackingOpened,
    Topic.TRACKING_CLICKED: tracking.TrackingClicked,
    Topic.TRACKING_MILESTONE: tracking.TrackingMilestoneReached,
    Topic.USER_ADDRESSES: bcc.UserAddressesVerified,
    Topic.CRM_PERSONS: crm.PersonUpserted,
    Topic.CRM_ORGANIZATIONS: crm.OrganizationUpserted,
    Topic.CRM_DEALS: crm.DealUpserted,
    Topic.CRM_LEADS: crm.LeadUpserted,
    Topic.CRM_PROJECTS: crm.ProjectUpserted,
    Topic.CRM_USERS: crm.UserUpserted,
}

TOPIC_KEYS: dict[str, str] = {
    Topic.ACCOUNT: "account id", Topic.ACCOUNT_STATUS: "account id",
    Topic.MESSAGE_RECEIVED: "account id", Topic.MESSAGE_LINKED: "account id",
    Topic.MESSAGE_UNLINKED: "account id", Topic.MESSAGE_IGNORED: "account id",
    Topic.MESSAGE_EXPUNGED: "account id", Topic.MESSAGE_CHANGED: "account id",
    Topic.FOLDER_RECONCILED: "account id", Topic.THREAD_COMMAND: "account id",
    Topic.MAILBOX_COMMAND: "account id", Topic.SETTINGS: "user:<id> or company:<id>",
    Topic.MAILBOX_COMMAND_COMPLETED: "account id",
    Topic.MATCHER_RECHECK: "account id",
    Topic.SEND_REQUESTED: "account id", Topic.TRACKING_REGISTERED: "message key",
    Topic.TRACKING_OPENED: "message key", Topic.TRACKING_CLICKED: "message key",
    Topic.TRACKING_MILESTONE: "message key",
    Topic.MESSAGE_SENT: "account id", Topic.SEND_FAILED: "account id",
    Topic.USER_ADDRESSES: "user id",
    Topic.CRM_PERSONS: "person id", Topic.CRM_ORGANIZATIONS: "organization id",
    Topic.CRM_DEALS: "deal id", Topic.CRM_LEADS: "lead id",
    Topic.CRM_PROJECTS: "project id", Topic.CRM_USERS: "user id",
}

DEAD_LETTER_MODEL = DeadLettered
