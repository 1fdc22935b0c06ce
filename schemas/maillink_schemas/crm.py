"""CRM input contracts: compacted crm.* topics produced by the CRM, keyed by record id.

Each consumer keeps its own projection and can rebuild it by replaying from the beginning.
A record with deleted=true is a deletion.
"""
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from .base import Contract


class CrmRecord(Contract):
    version: int = Field(default=1, description="Grows with each change; an older version never overwrites a newer one.")
    deleted: bool = False
    visibility_group: str | None = Field(default=None, description="Who may see the record: users whose `groups` "
                                         "include it (or who list its id in `visible_record_ids`); null means "
                                         "everyone of the company.")


class PersonUpserted(CrmRecord):
    person_id: str
    name: str = ""
    emails: list[str] = Field(default_factory=list, description="All of the person's addresses.")
    organization_id: str | None = None


class OrganizationUpserted(CrmRecord):
    organization_id: str
    name: str = ""
    domains: list[str] = Field(default_factory=list)


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class DealUpserted(CrmRecord):
    deal_id: str
    title: str = ""
    status: DealStatus = DealStatus.OPEN
    person_ids: list[str] = Field(default_factory=list)
    organization_id: str | None = None
    last_activity_at: datetime | None = Field(default=None, description="Latest activity, to order suggestions.")
    company_id: str | None = Field(default=None, description="The company the deal belongs to, where the CRM says: "
                                   "a Smart Bcc deal address of another company's user never links to it.")


class LeadUpserted(CrmRecord):
    lead_id: str
    title: str = ""
    open: bool = True
    person_ids: list[str] = Field(default_factory=list)
    last_activity_at: datetime | None = Field(default=None, description="Latest activity, to order suggestions.")


class ProjectUpserted(CrmRecord):
    project_id: str
    title: str = ""
    open: bool = True
    person_ids: list[str] = Field(default_factory=list)
    last_activity_at: datetime | None = Field(default=None, description="Latest activity, to order suggestions.")
    deal_id: str | None = None


class UserUpserted(CrmRecord):
    user_id: str
    name: str = ""
    emails: list[str] = Field(default_factory=list, description="The user's own addresses (login and alternatives).")
    is_admin: bool = False
    company_id: str | None = Field(default=None, description="The user's company: shared mail is only ever shown "
                                   "within one company, and the Smart Bcc gateway gives each company one address.")
    login_email: str | None = Field(default=None, description="The address the user logs in with: by default the only "
                                    "one that may send to the Smart Bcc address. When absent, the first of `emails`.")
    groups: list[str] = Field(default_factory=list, description="Visibility groups the user belongs to.")
    visible_record_ids: list[str] = Field(default_factory=list, description="Records the user may see whatever "
                                          "their visibility group (persons, organizations, deals, leads, projects).")
