"""The provider catalog: one preset per mail provider, as data with a schema. Ingest and outbound
both read it; nobody keeps a second copy (ARCHITECTURE.md, "Provider catalog").

Data only: no I/O and no behaviour beyond looking an entry up. Each quirk is a sentence here and
is handled (and commented) where its branch is taken in the service that meets it. Limits are the
providers' published figures as of 2026-11; `attachment_limit_bytes` applies to the whole encoded
message (base64 makes a file about 4/3 of its size), which is how the providers count it.
"""
from enum import StrEnum

from pydantic import Field

from .accounts import Security
from .base import Contract

MB = 1024 * 1024


class AuthMethod(StrEnum):
    PASSWORD = "password"   # SMTP AUTH PLAIN/LOGIN, IMAP LOGIN (app passwords where 2FA is on)
    XOAUTH2 = "xoauth2"     # OAuth 2 access token (SASL XOAUTH2)


class Endpoint(Contract):
    host: str
    port: int = Field(ge=1, le=65535)
    security: Security = Field(description="ssl = implicit TLS; starttls = upgrade after connecting.")


class SpecialFolders(Contract):
    sent: str = Field(default="Sent", description="Where sent mail is filed (used when the server does not "
                      "advertise a \\Sent special-use folder).")
    drafts: str = "Drafts"
    trash: str = "Trash"
    spam: str = "Junk"
    archive: str | None = "Archive"


class SendLimits(Contract):
    connections: int = Field(default=2, ge=1, description="Simultaneous SMTP connections per account.")
    messages_per_connection: int = Field(default=50, ge=1, description="Messages sent on one connection "
                                         "before it is closed and a new one opened.")
    messages_per_minute: int = Field(default=30, ge=1, description="Messages per account per minute.")
    recipients_per_message: int = Field(default=100, ge=1)


class ProviderPreset(Contract):
    id: str = Field(description="Stable identifier, e.g. gmail; AccountConfigured.provider names it.")
    name: str = Field(description="Name shown to a person, e.g. in an error message.")
    domains: list[str] = Field(default_factory=list, description="Mail domains hosted by the provider.")
    imap: Endpoint | None = Field(default=None, description="None for the generic entry (the account says).")
    smtp: Endpoint | None = None
    auth: list[AuthMethod] = Field(default_factory=lambda: [AuthMethod.PASSWORD],
                                   description="Accepted methods, preferred first.")
    folders: SpecialFolders = Field(default_factory=SpecialFolders)
    attachment_limit_bytes: int = Field(description="Largest encoded message the provider accepts.")
    files_sent_mail: bool = Field(description="true when the provider itself stores what is submitted over "
                                  "SMTP in the Sent folder (then nobody must APPEND a copy).")
    limits: SendLimits = Field(default_factory=SendLimits)
    quirks: list[str] = Field(default_factory=list, description="Known behaviour that code must allow for.")


def _e(host: str, port: int, security: Security) -> Endpoint:
    return Endpoint(host=host, port=port, security=security)


PROVIDERS: dict[str, ProviderPreset] = {p.id: p for p in (
    ProviderPreset(
        id="gmail", name="Gmail", domains=["gmail.com", "googlemail.com"],
        imap=_e("imap.gmail.com", 993, Security.SSL), smtp=_e("smtp.gmail.com", 465, Security.SSL),
        auth=[AuthMethod.XOAUTH2, AuthMethod.PASSWORD],
        folders=SpecialFolders(sent="[Gmail]/Sent Mail", drafts="[Gmail]/Drafts", trash="[Gmail]/Trash",
                               spam="[Gmail]/Spam", archive="[Gmail]/All Mail"),
        attachment_limit_bytes=25 * MB, files_sent_mail=True,
        limits=SendLimits(connections=3, messages_per_connection=100, messages_per_minute=60),
        quirks=["Mail submitted over SMTP is filed in [Gmail]/Sent Mail by Gmail itself: appending a copy "
                "would show it twice.",
                "Folders are labels: one message can sit in several folders; X-GM-THRID gives the thread.",
                "Password login needs an app password (2-step verification); XOAUTH2 is preferred."]),
    ProviderPreset(
        id="microsoft365", name="Microsoft 365", domains=[],
        imap=_e("outlook.office365.com", 993, Security.SSL), smtp=_e("smtp.office365.com", 587, Security.STARTTLS),
        auth=[AuthMethod.XOAUTH2],
        folders=SpecialFolders(sent="Sent Items", trash="Deleted Items", spam="Junk Email", archive="Archive"),
        attachment_limit_bytes=35 * MB, files_sent_mail=True,
        limits=SendLimits(connections=3, messages_per_connection=100, messages_per_minute=30),
        quirks=["Basic authentication is off for most tenants: XOAUTH2 only.",
                "SMTP submissions are saved to Sent Items by Exchange itself."]),
    ProviderPreset(
        id="outlook", name="Outlook.com", domains=["outlook.com", "hotmail.com", "live.com", "msn.com"],
        imap=_e("outlook.office365.com", 993, Security.SSL), smtp=_e("smtp-mail.outlook.com", 587, Security.STARTTLS),
        auth=[AuthMethod.XOAUTH2],
        folders=SpecialFolders(sent="Sent", trash="Deleted", spam="Junk", archive="Archive"),
        attachment_limit_bytes=20 * MB, files_sent_mail=True,
        limits=SendLimits(connections=1, messages_per_connection=30, messages_per_minute=30),
        quirks=["Consumer accounts accept only XOAUTH2 since 2024-09."]),
    ProviderPreset(
        id="yahoo", name="Yahoo Mail", domains=["yahoo.com", "ymail.com", "rocketmail.com"],
        imap=_e("imap.mail.yahoo.com", 993, Security.SSL), smtp=_e("smtp.mail.yahoo.com", 465, Security.SSL),
        auth=[AuthMethod.PASSWORD, AuthMethod.XOAUTH2],
        folders=SpecialFolders(sent="Sent", trash="Trash", spam="Bulk", archive="Archive"),
        attachment_limit_bytes=25 * MB, files_sent_mail=False,
        limits=SendLimits(connections=1, messages_per_connection=20, messages_per_minute=20),
        quirks=["Password login needs an app password.",
                "SMTP submissions are not filed in Sent: the client appends the copy."]),
    ProviderPreset(
        id="icloud", name="iCloud Mail", domains=["icloud.com", "me.com", "mac.com"],
        imap=_e("imap.mail.me.com", 993, Security.SSL), smtp=_e("smtp.mail.me.com", 587, Security.STARTTLS),
        folders=SpecialFolders(sent="Sent Messages", trash="Deleted Messages", spam="Junk", archive="Archive"),
        attachment_limit_bytes=20 * MB, files_sent_mail=False,
        limits=SendLimits(connections=1, messages_per_connection=20, messages_per_minute=20),
        quirks=["App-specific password required.", "The SMTP login name is the full address.",
                "SMTP submissions are not filed in Sent: the client appends the copy."]),
    ProviderPreset(
        id="fastmail", name="Fastmail", domains=["fastmail.com", "fastmail.fm"],
        imap=_e("imap.fastmail.com", 993, Security.SSL), smtp=_e("smtp.fastmail.com", 465, Security.SSL),
        folders=SpecialFolders(sent="Sent", trash="Trash", spam="Spam", archive="Archive"),
        attachment_limit_bytes=70 * MB, files_sent_mail=False,
        limits=SendLimits(connections=2, messages_per_connection=50, messages_per_minute=60),
        quirks=["App password required for IMAP/SMTP.",
                "SMTP submissions are not filed in Sent: the client appends the copy."]),
    ProviderPreset(
        # The project's own loopback servers (deploy/local/smtp_server.py + Dovecot): generous limits so
        # the crash test and the benchmark measure outbound, not a throttle. Never matched by domain.
        id="local-test", name="the local test server", domains=[],
        attachment_limit_bytes=25 * MB, files_sent_mail=False,
        limits=SendLimits(connections=4, messages_per_connection=1000, messages_per_minute=1_000_000,
                          recipients_per_message=100),
        quirks=["Files sent mail itself only when started with --file-sent (the account's smtp.files_sent says)."]),
    ProviderPreset(
        id="generic", name="your mail provider", domains=[],
        attachment_limit_bytes=25 * MB, files_sent_mail=False,
        quirks=["Hosts come from the account (AccountConfigured.imap / .smtp).",
                "Assume the server does not file sent mail unless the account's SMTP endpoint says it does."]),
)}


def preset(provider_id: str | None) -> ProviderPreset:
    """The named preset; unknown or missing ids get the generic entry."""
    return PROVIDERS.get(provider_id or "generic", PROVIDERS["generic"])


def for_address(email: str) -> ProviderPreset:
    domain = email.rsplit("@", 1)[-1].lower()
    return next((p for p in PROVIDERS.values() if domain in p.domains), PROVIDERS["generic"])
