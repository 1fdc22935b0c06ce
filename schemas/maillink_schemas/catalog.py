"""Which contract travels on which topic: the source of the exported JSON Schema and AsyncAPI."""
from pydantic import BaseModel

from . import accounts, crm, mail, outbound, tracking
from .dead_letter import DeadLettered
from .topics import Topic

TOPIC_MODELS: dict[str, type[BaseModel]] = {
    Topic.ACCOUNT: accounts.AccountConfigured,
    Topic.ACCOUNT_STATUS: accounts.AccountStatusChanged,
    Topic.MESSAGE_RECEIVED: mail.MessageReceived,
    Topic.MESSAGE_LINKED: mail.MessageLinked,
    Topic.SEND_REQUESTED: outbound.SendRequested,
    Topic.MESSAGE_SENT: outbound.MessageSent,
    Topic.SEND_FAILED: outbound.SendFailed,
    Topic.TRACKING_REGISTERED: tracking.TrackingRegistered,
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
    Topic.SEND_REQUESTED: "account id", Topic.TRACKING_REGISTERED: "message key",
    Topic.MESSAGE_SENT: "account id", Topic.SEND_FAILED: "account id",
    Topic.CRM_PERSONS: "person id", Topic.CRM_ORGANIZATIONS: "organization id",
    Topic.CRM_DEALS: "deal id", Topic.CRM_LEADS: "lead id",
    Topic.CRM_PROJECTS: "project id", Topic.CRM_USERS: "user id",
}

DEAD_LETTER_MODEL = DeadLettered
