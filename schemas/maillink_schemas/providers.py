"""The provider catalog: one preset per mail provider, as data with a schema. Ingest and outbound
both read it; nobody keeps a second copy (ARCHITECTURE.md, "Provider catalog").

Data only: no I/O and no behaviour beyond looking an entry up. Each quirk is a sentence here and
is handled (and commented) where its branch is taken in the service that meets it; the quirks
code branches on are also flags (`imap_id_required`, `gmail_extensions`), so no code parses prose.

Where the values come from: the providers' own published IMAP/SMTP settings pages, as known on
2026-11. Nothing here was confirmed against a live account of the provider (no provider is
reachable from where this was built); what is least certain is listed in each preset's
`unconfirmed`, so a person with a real account knows what to check first. Limits:
`attachment_limit_bytes` applies to the whole encoded message (base64 makes a file about 4/3 of
its size), which is how the providers count it.

Folder names are a fallback: servers that advertise SPECIAL-USE (RFC 6154) are believed over
the names here. Names are decoded (not modified UTF-7); `{domain}` in a host is the mailbox
address's domain (hosting providers that serve each customer domain at mail.<domain>).
"""
from pydantic import Field

from .accounts import AuthMethod, Security
from .base import Contract

MB = 1024 * 1024
__all__ = ["AuthMethod", "Endpoint", "SpecialFolders", "SendLimits", "ProviderPreset", "PROVIDERS", "MISSION_PROVIDERS",
           "preset", "detect", "for_address", "host_for"]


class Endpoint(Contract):
    host: str = Field(description="Host name; `{domain}` stands for the mailbox address's domain.")
    port: int = Field(ge=1, le=65535)
    security: Security = Field(description="ssl = implicit TLS; starttls = upgrade after connecting.")


class SpecialFolders(Contract):
    sent: str = Field(default="Sent", description="Where sent mail is filed (used when the server does not "
                      "advertise a \\Sent special-use folder).")
    drafts: str = "Drafts"
    trash: str = Field(default="Trash", description="Where a delete moves a message (sync-back).")
    spam: str = "Junk"
    archive: str | None = Field(default="Archive", description="Where an archive moves a message (sync-back); "
                                "null: the provider has none (archive then only leaves INBOX).")


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
    mx_suffixes: list[str] = Field(default_factory=list, description="MX host suffixes of domains the provider "
                                   "hosts (custom domains); the longest matching suffix wins.")
    imap: Endpoint | None = Field(default=None, description="None: the account gives the host (self-hosted "
                                  "servers, the generic entry).")
    smtp: Endpoint | None = None
    auth: list[AuthMethod] = Field(default_factory=lambda: [AuthMethod.PASSWORD],
                                   description="Accepted methods, preferred first.")
    folders: SpecialFolders = Field(default_factory=SpecialFolders)
    attachment_limit_bytes: int = Field(description="Largest encoded message the provider accepts.")
    files_sent_mail: bool = Field(description="true when the provider itself stores what is submitted over "
                                  "SMTP in the Sent folder (then nobody must APPEND a copy).")
    limits: SendLimits = Field(default_factory=SendLimits)
    imap_id_required: bool = Field(default=False, description="The server refuses SELECT until the client "
                                   "identified itself with the IMAP ID command (RFC 2971).")
    gmail_extensions: bool = Field(default=False, description="The server offers X-GM-EXT-1 (labels, "
                                   "X-GM-MSGID, X-GM-THRID): ingest syncs All Mail once, by label.")
    quirks: list[str] = Field(default_factory=list, description="Known behaviour that code must allow for.")
    unconfirmed: list[str] = Field(default_factory=list, description="Values taken from published settings "
                                   "but not yet confirmed against a real account of the provider.")


def _e(host: str, port: int, security: Security) -> Endpoint:
    return Endpoint(host=host, port=port, security=security)


def _ssl(host: str, port: int = 993) -> Endpoint:
    return _e(host, port, Security.SSL)


def _starttls(host: str, port: int = 587) -> Endpoint:
    return _e(host, port, Security.STARTTLS)


_APP_PASSWORD = "Password login needs an app password (the provider refuses the account password over IMAP/SMTP)."
_AUTH_CODE = ("IMAP/SMTP must be switched on in the web settings, and the login takes an authorization code "
              "(授权码) generated there, not the account password.")
_NETEASE_ID = ("SELECT is refused (\"NO SELECT Unsafe Login\") until the client sends the IMAP ID command "
               "(RFC 2971): ingest sends ID after login when imap_id_required is set.")
_NO_SENT_COPY = "SMTP submissions are not filed in Sent: the client appends the copy."
_DOVECOT_LIKE = [_APP_PASSWORD]
_NETEASE_FOLDERS = SpecialFolders(sent="已发送", drafts="草稿箱", trash="已删除", spam="垃圾邮件", archive=None)
_NETEASE_UNCONFIRMED = ["folder names (Chinese; the server also advertises SPECIAL-USE)", "attachment limit",
                        "whether SMTP submissions are filed in Sent"]
_EXCHANGE_FOLDERS = SpecialFolders(sent="Sent Items", trash="Deleted Items", spam="Junk Email", archive="Archive")
_MS_THROTTLE = ("Exchange Online throttles: \"Request is throttled\" and a per-mailbox limit of concurrent IMAP "
                "connections; back off as asked and keep the cursor.")

PROVIDERS: dict[str, ProviderPreset] = {p.id: p for p in (
    ProviderPreset(
        id="gmail", name="Gmail", domains=["gmail.com", "googlemail.com"],
        mx_suffixes=["google.com", "googlemail.com"],
        imap=_ssl("imap.gmail.com"), smtp=_ssl("smtp.gmail.com", 465),
        auth=[AuthMethod.XOAUTH2, AuthMethod.APP_PASSWORD],
        folders=SpecialFolders(sent="[Gmail]/Sent Mail", drafts="[Gmail]/Drafts", trash="[Gmail]/Trash",
                               spam="[Gmail]/Spam", archive="[Gmail]/All Mail"),
        attachment_limit_bytes=25 * MB, files_sent_mail=True, gmail_extensions=True,
        limits=SendLimits(connections=3, messages_per_connection=100, messages_per_minute=60),
        quirks=["Mail submitted over SMTP is filed in [Gmail]/Sent Mail by Gmail itself: appending a copy "
                "would show it twice.",
                "Folders are labels: one message sits in several folders. With X-GM-EXT-1 ingest syncs "
                "[Gmail]/All Mail once and reads X-GM-LABELS, X-GM-MSGID and X-GM-THRID (sync/gmail.py).",
                "Password login needs an app password (2-step verification); XOAUTH2 is preferred. A failed "
                "XOAUTH2 first gets a base64 JSON error challenge, answered with an empty line, then NO.",
                "Some accounts (UK, Germany, older) use the prefix [Google Mail]/ instead of [Gmail]/: "
                "SPECIAL-USE names them.",
                "Deleting from a label folder only removes the label; a delete moves to [Gmail]/Trash.",
                "A daily IMAP download cap (bandwidth) and FETCH answered NO for single messages."],
        unconfirmed=["attachment limit counted on the encoded message"]),
    ProviderPreset(
        id="yahoo", name="Yahoo Mail", domains=["yahoo.com", "ymail.com", "rocketmail.com", "yahoo.co.uk",
                                                "yahoo.fr", "yahoo.de", "yahoo.es", "yahoo.it", "yahoo.co.jp"],
        mx_suffixes=["yahoodns.net"],
        imap=_ssl("imap.mail.yahoo.com"), smtp=_ssl("smtp.mail.yahoo.com", 465),
        auth=[AuthMethod.APP_PASSWORD, AuthMethod.XOAUTH2],
        folders=SpecialFolders(sent="Sent", drafts="Draft", trash="Trash", spam="Bulk", archive="Archive"),
        attachment_limit_bytes=25 * MB, files_sent_mail=False,
        limits=SendLimits(connections=1, messages_per_connection=20, messages_per_minute=20),
        quirks=[_APP_PASSWORD, _NO_SENT_COPY,
                "XOAUTH2 is open only to apps Yahoo approved; app passwords are the usual way."],
        unconfirmed=["spam folder name (Bulk vs Bulk Mail)", "whether SMTP submissions are filed in Sent",
                     "yahoo.co.jp is a separate service (Yahoo! JAPAN) with its own hosts"]),
    ProviderPreset(
        id="microsoft365", name="Microsoft 365", domains=[], mx_suffixes=["mail.protection.outlook.com"],
        imap=_ssl("outlook.office365.com"), smtp=_starttls("smtp.office365.com"),
        auth=[AuthMethod.XOAUTH2],
        folders=_EXCHANGE_FOLDERS,
        attachment_limit_bytes=35 * MB, files_sent_mail=True,
        limits=SendLimits(connections=3, messages_per_connection=100, messages_per_minute=30),
        quirks=["Basic authentication is off for most tenants: XOAUTH2 only.",
                "SMTP AUTH submission can be disabled per tenant or per mailbox by the admin.",
                "SMTP submissions are saved to Sent Items by Exchange itself.", _MS_THROTTLE,
                "No CONDSTORE/QRESYNC: incremental sync uses the plain fallback (UID SEARCH diff and FLAGS)."],
        unconfirmed=["attachment limit (35 MB default; a tenant admin may raise it to 150 MB)",
                     "absence of CONDSTORE/QRESYNC on every tenant"]),
    ProviderPreset(
        id="exchange", name="Microsoft Exchange", domains=[],
        imap=None, smtp=None, auth=[AuthMethod.PASSWORD, AuthMethod.XOAUTH2],
        folders=_EXCHANGE_FOLDERS,
        attachment_limit_bytes=10 * MB, files_sent_mail=False,
        quirks=["Self-hosted: the account gives the IMAP and SMTP hosts (IMAP 993 SSL, SMTP 587 STARTTLS "
                "are the usual ports).", "IMAP is a separate service the admin must enable.",
                "Private servers often use an internal CA: AccountConfigured.ca_pem trusts it for this account."],
        unconfirmed=["attachment limit (Exchange's default MaxSendSize is 10 MB; admins change it)",
                     "whether SMTP client submissions are filed in Sent Items (assumed not)"]),
    ProviderPreset(
        id="outlook", name="Outlook.com",
        domains=["outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.co.uk", "hotmail.fr",
                 "hotmail.de", "hotmail.it", "live.co.uk", "live.fr", "outlook.fr", "outlook.de"],
        mx_suffixes=["olc.protection.outlook.com"],
        imap=_ssl("outlook.office365.com"), smtp=_starttls("smtp-mail.outlook.com"),
        auth=[AuthMethod.XOAUTH2],
        folders=SpecialFolders(sent="Sent", trash="Deleted", spam="Junk", archive="Archive"),
        attachment_limit_bytes=20 * MB, files_sent_mail=True,
        limits=SendLimits(connections=1, messages_per_connection=30, messages_per_minute=30),
        quirks=["Consumer accounts accept only XOAUTH2 since 2024-09.", _MS_THROTTLE],
        unconfirmed=["attachment limit", "folder names without SPECIAL-USE (Deleted vs Deleted Items)"]),
    ProviderPreset(
        id="icloud", name="iCloud Mail", domains=["icloud.com", "me.com", "mac.com"],
        mx_suffixes=["mail.icloud.com"],
        imap=_ssl("imap.mail.me.com"), smtp=_starttls("smtp.mail.me.com"),
        auth=[AuthMethod.APP_PASSWORD],
        folders=SpecialFolders(sent="Sent Messages", trash="Deleted Messages", spam="Junk", archive="Archive"),
        attachment_limit_bytes=20 * MB, files_sent_mail=False,
        limits=SendLimits(connections=1, messages_per_connection=20, messages_per_minute=20),
        quirks=["App-specific password required.", "The SMTP login name is the full address; Apple documents "
                "the IMAP login as the name part, with the full address as an accepted alternative.",
                _NO_SENT_COPY],
        unconfirmed=["IMAP login with the full address for every account"]),
    ProviderPreset(
        id="aol", name="AOL Mail", domains=["aol.com", "aim.com", "aol.co.uk", "aol.fr", "aol.de"],
        mx_suffixes=["mx-aol.mail.gm0.yahoodns.net"],
        imap=_ssl("imap.aol.com"), smtp=_ssl("smtp.aol.com", 465),
        auth=[AuthMethod.APP_PASSWORD, AuthMethod.XOAUTH2],
        folders=SpecialFolders(sent="Sent", drafts="Drafts", trash="Trash", spam="Bulk", archive="Archive"),
        attachment_limit_bytes=25 * MB, files_sent_mail=False,
        limits=SendLimits(connections=1, messages_per_connection=20, messages_per_minute=20),
        quirks=[_APP_PASSWORD, "Runs on Yahoo's mail platform (same quirks, MX under yahoodns.net).", _NO_SENT_COPY],
        unconfirmed=["spam folder name", "whether SMTP submissions are filed in Sent"]),
    ProviderPreset(
        id="fastmail", name="Fastmail", domains=["fastmail.com", "fastmail.fm", "fastmail.net", "fastmail.org",
                                                 "fastmail.us", "messagingengine.com"],
        mx_suffixes=["messagingengine.com"],
        imap=_ssl("imap.fastmail.com"), smtp=_ssl("smtp.fastmail.com", 465),
        auth=[AuthMethod.APP_PASSWORD, AuthMethod.XOAUTH2],
        folders=SpecialFolders(sent="Sent", trash="Trash", spam="Spam", archive="Archive"),
        attachment_limit_bytes=70 * MB, files_sent_mail=False,
        limits=SendLimits(connections=2, messages_per_connection=50, messages_per_minute=60),
        quirks=["App password required for IMAP/SMTP.", _NO_SENT_COPY],
        unconfirmed=["XOAUTH2 is for registered apps only"]),
    ProviderPreset(
        id="gandi", name="Gandi Mail", domains=[], mx_suffixes=["mail.gandi.net"],
        imap=_ssl("mail.gandi.net"), smtp=_ssl("mail.gandi.net", 465),
        attachment_limit_bytes=50 * MB, files_sent_mail=False,
        quirks=[_NO_SENT_COPY],
        unconfirmed=["attachment limit", "folder names (Dovecot defaults assumed)"]),
    ProviderPreset(
        id="gmx", name="GMX", domains=["gmx.net", "gmx.de", "gmx.at", "gmx.ch"], mx_suffixes=["gmx.net"],
        imap=_ssl("imap.gmx.net"), smtp=_starttls("mail.gmx.net"),
        folders=SpecialFolders(sent="Gesendet", drafts="Entwürfe", trash="Gelöscht", spam="Spamverdacht",
                               archive=None),
        attachment_limit_bytes=20 * MB, files_sent_mail=False,
        quirks=["IMAP access must be switched on in the web settings first.", _NO_SENT_COPY],
        unconfirmed=["folder names (German; SPECIAL-USE is believed first)", "attachment limit"]),
    ProviderPreset(
        id="gmx-com", name="GMX (gmx.com)", domains=["gmx.com", "gmx.us", "gmx.co.uk", "gmx.fr", "gmx.es"],
        mx_suffixes=["gmx.com"],
        imap=_ssl("imap.gmx.com"), smtp=_starttls("mail.gmx.com"),
        folders=SpecialFolders(sent="Sent", drafts="Drafts", trash="Trash", spam="Spam", archive=None),
        attachment_limit_bytes=20 * MB, files_sent_mail=False,
        quirks=["The international GMX service: other hosts than gmx.net.", _NO_SENT_COPY],
        unconfirmed=["attachment limit"]),
    ProviderPreset(
        id="mailru", name="Mail.ru", domains=["mail.ru", "inbox.ru", "list.ru", "bk.ru", "internet.ru"],
        mx_suffixes=["mxs.mail.ru"],
        imap=_ssl("imap.mail.ru"), smtp=_ssl("smtp.mail.ru", 465), auth=[AuthMethod.APP_PASSWORD],
        folders=SpecialFolders(sent="Отправленные", drafts="Черновики", trash="Корзина", spam="Спам",
                               archive="Архив"),
        attachment_limit_bytes=25 * MB, files_sent_mail=False,
        quirks=["Logins from mail programs need a password for external apps.", _NO_SENT_COPY],
        unconfirmed=["whether SMTP submissions are filed in Sent", "attachment limit (larger files go to the "
                     "cloud as links)"]),
    ProviderPreset(
        id="yandex", name="Yandex Mail", domains=["yandex.ru", "yandex.com", "ya.ru", "yandex.by", "yandex.kz",
                                                  "yandex.ua", "narod.ru"],
        mx_suffixes=["mx.yandex.net", "mx.yandex.ru"],
        imap=_ssl("imap.yandex.com"), smtp=_ssl("smtp.yandex.com", 465),
        auth=[AuthMethod.APP_PASSWORD, AuthMethod.XOAUTH2],
        folders=SpecialFolders(sent="Sent", drafts="Drafts", trash="Trash", spam="Spam", archive="Archive"),
        attachment_limit_bytes=30 * MB, files_sent_mail=True,
        quirks=["IMAP access and an app password are set up in the web settings.",
                "SMTP submissions are filed in Sent by the server (a setting, on by default)."],
        unconfirmed=["files_sent_mail (the setting's default)", "folder names for Russian-language accounts"]),
    ProviderPreset(
        id="godaddy", name="GoDaddy Workspace Email", domains=[], mx_suffixes=["secureserver.net"],
        imap=_ssl("imap.secureserver.net"), smtp=_ssl("smtpout.secureserver.net", 465),
        attachment_limit_bytes=20 * MB, files_sent_mail=False,
        quirks=["\"Microsoft 365 from GoDaddy\" mailboxes are Microsoft 365: use that preset (MX under "
                "mail.protection.outlook.com detects it).", _NO_SENT_COPY],
        unconfirmed=["attachment limit", "folder names"]),
    ProviderPreset(
        id="hover", name="Hover", domains=[], mx_suffixes=["hover.com.cust.hostedemail.com"],
        imap=_ssl("mail.hover.com"), smtp=_ssl("mail.hover.com", 465),
        attachment_limit_bytes=25 * MB, files_sent_mail=False, quirks=[_NO_SENT_COPY],
        unconfirmed=["attachment limit", "folder names"]),
    ProviderPreset(
        id="namecheap", name="Namecheap Private Email", domains=[], mx_suffixes=["privateemail.com"],
        imap=_ssl("mail.privateemail.com"), smtp=_ssl("mail.privateemail.com", 465),
        attachment_limit_bytes=25 * MB, files_sent_mail=False, quirks=[_NO_SENT_COPY],
        unconfirmed=["attachment limit", "folder names"]),
    ProviderPreset(
        id="bluehost", name="Bluehost", domains=[],
        imap=_ssl("mail.{domain}"), smtp=_ssl("mail.{domain}", 465),
        attachment_limit_bytes=25 * MB, files_sent_mail=False,
        quirks=["Each customer domain is served at mail.<domain> (its MX points at the domain itself, so it "
                "cannot be detected: the user picks Bluehost). The certificate may be issued for the "
                "server's own name (boxNNNN.bluehost.com): then the account gives that host.", _NO_SENT_COPY],
        unconfirmed=["certificate name on mail.<domain>", "attachment limit"]),
    ProviderPreset(
        id="soverin", name="Soverin", domains=["soverin.net"], mx_suffixes=["soverin.net"],
        imap=_ssl("imap.soverin.net"), smtp=_ssl("smtp.soverin.net", 465),
        attachment_limit_bytes=25 * MB, files_sent_mail=False, quirks=[_NO_SENT_COPY],
        unconfirmed=["attachment limit"]),
    ProviderPreset(
        id="zimbra", name="Zimbra", domains=[],
        imap=None, smtp=None,
        folders=SpecialFolders(sent="Sent", drafts="Drafts", trash="Trash", spam="Junk", archive=None),
        attachment_limit_bytes=10 * MB, files_sent_mail=False,
        quirks=["Self-hosted: the account gives the hosts (IMAP 993 SSL, SMTP 587 STARTTLS usual).",
                "No Archive folder by default: archive leaves INBOX by moving to the account's archive "
                "folder only when one exists.", _NO_SENT_COPY],
        unconfirmed=["attachment limit (zimbraMtaMaxMessageSize, 10 MB by default)"]),
    ProviderPreset(
        id="123-reg", name="123-reg", domains=[], mx_suffixes=["123-reg.co.uk"],
        imap=_ssl("imap.123-reg.co.uk"), smtp=_ssl("smtp.123-reg.co.uk", 465),
        attachment_limit_bytes=20 * MB, files_sent_mail=False, quirks=[_NO_SENT_COPY],
        unconfirmed=["attachment limit", "folder names"]),
    ProviderPreset(
        id="126", name="126 Mail (NetEase)", domains=["126.com"],
        imap=_ssl("imap.126.com"), smtp=_ssl("smtp.126.com", 465), auth=[AuthMethod.APP_PASSWORD],
        folders=_NETEASE_FOLDERS, attachment_limit_bytes=50 * MB, files_sent_mail=False, imap_id_required=True,
        quirks=[_AUTH_CODE, _NETEASE_ID, _NO_SENT_COPY], unconfirmed=_NETEASE_UNCONFIRMED),
    ProviderPreset(
        id="163", name="NetEase 163 Mail", domains=["163.com"], mx_suffixes=["qiye.163.com"],
        imap=_ssl("imap.163.com"), smtp=_ssl("smtp.163.com", 465), auth=[AuthMethod.APP_PASSWORD],
        folders=_NETEASE_FOLDERS, attachment_limit_bytes=50 * MB, files_sent_mail=False, imap_id_required=True,
        quirks=[_AUTH_CODE, _NETEASE_ID, _NO_SENT_COPY,
                "NetEase enterprise mail (MX under qiye.163.com) uses imap.qiye.163.com / smtp.qiye.163.com: "
                "the account overrides the hosts."],
        unconfirmed=_NETEASE_UNCONFIRMED),
    ProviderPreset(
        id="yeah", name="Yeah.net (NetEase)", domains=["yeah.net"],
        imap=_ssl("imap.yeah.net"), smtp=_ssl("smtp.yeah.net", 465), auth=[AuthMethod.APP_PASSWORD],
        folders=_NETEASE_FOLDERS, attachment_limit_bytes=50 * MB, files_sent_mail=False, imap_id_required=True,
        quirks=[_AUTH_CODE, _NETEASE_ID, _NO_SENT_COPY], unconfirmed=_NETEASE_UNCONFIRMED),
    ProviderPreset(
        id="qq", name="QQ Mail", domains=["qq.com", "foxmail.com", "vip.qq.com"], mx_suffixes=["mx.qq.com"],
        imap=_ssl("imap.qq.com"), smtp=_ssl("smtp.qq.com", 465), auth=[AuthMethod.APP_PASSWORD],
        folders=SpecialFolders(sent="Sent Messages", drafts="Drafts", trash="Deleted Messages", spam="Junk",
                               archive=None),
        attachment_limit_bytes=50 * MB, files_sent_mail=False,
        quirks=[_AUTH_CODE, "Tencent Exmail (business, MX mxbiz*.qq.com) uses imap.exmail.qq.com: the account "
                "overrides the hosts.", _NO_SENT_COPY],
        unconfirmed=["attachment limit", "folder names"]),
    ProviderPreset(
        id="aliyun", name="Aliyun Mail", domains=["aliyun.com"],
        imap=_ssl("imap.aliyun.com"), smtp=_ssl("smtp.aliyun.com", 465),
        attachment_limit_bytes=50 * MB, files_sent_mail=False,
        quirks=["Alibaba enterprise mail (MX under mxhichina.com) uses imap.qiye.aliyun.com: see aliyun-enterprise.",
                _NO_SENT_COPY],
        unconfirmed=["attachment limit", "folder names (Chinese names likely; SPECIAL-USE believed first)"]),
    ProviderPreset(
        id="aliyun-enterprise", name="Alibaba Mail (enterprise)", domains=[], mx_suffixes=["mxhichina.com"],
        imap=_ssl("imap.qiye.aliyun.com"), smtp=_ssl("smtp.qiye.aliyun.com", 465),
        attachment_limit_bytes=50 * MB, files_sent_mail=False, quirks=[_NO_SENT_COPY],
        unconfirmed=["attachment limit", "folder names"]),
    ProviderPreset(
        id="139", name="139 Mail (China Mobile)", domains=["139.com"], mx_suffixes=["mail.139.com"],
        imap=_ssl("imap.139.com"), smtp=_ssl("smtp.139.com", 465), auth=[AuthMethod.APP_PASSWORD],
        folders=SpecialFolders(sent="已发送", drafts="草稿箱", trash="已删除", spam="垃圾邮件", archive=None),
        attachment_limit_bytes=50 * MB, files_sent_mail=False,
        quirks=["IMAP/SMTP must be switched on in the web settings; an authorization code may be needed.",
                _NO_SENT_COPY],
        unconfirmed=["auth (password or authorization code)", "attachment limit", "folder names"]),
    ProviderPreset(
        # The project's own loopback servers (deploy/local/smtp_server.py + Dovecot): generous limits so
        # the crash test and the benchmark measure outbound, not a throttle. Never matched by domain.
        id="local-test", name="the local test server", domains=[],
        attachment_limit_bytes=25 * MB, files_sent_mail=False,
        limits=SendLimits(connections=4, messages_per_connection=1000, messages_per_minute=1_000_000,
                          recipients_per_message=100),
        quirks=["Files sent mail itself only when started with --file-sent (the account's smtp.files_sent says)."]),
    ProviderPreset(
        id="generic", name="your mail provider (any IMAP server over SSL/TLS)", domains=[],
        attachment_limit_bytes=25 * MB, files_sent_mail=False,
        quirks=["Hosts come from the account (AccountConfigured.imap / .smtp); TLS (implicit or STARTTLS) is "
                "required and the certificate is always verified (a private CA: AccountConfigured.ca_pem).",
                "Assume the server does not file sent mail unless the account's SMTP endpoint says it does."]),
)}

# Which presets MISSION.md §7 names (tests check that each one exists).
MISSION_PROVIDERS = ("gmail", "yahoo", "microsoft365", "exchange", "outlook", "icloud", "aol", "fastmail", "gandi",
                     "gmx", "mailru", "yandex", "godaddy", "hover", "namecheap", "bluehost", "soverin", "zimbra",
                     "123-reg", "126", "qq", "aliyun", "163", "yeah", "139", "generic")


def preset(provider_id: str | None) -> ProviderPreset:
    """The named preset; unknown or missing ids get the generic entry."""
    return PROVIDERS.get(provider_id or "generic", PROVIDERS["generic"])


def detect(email: str, mx_hosts: list[str] | tuple[str, ...] = ()) -> ProviderPreset:
    """The preset for an address: its domain first, then the MX hosts the caller looked up (if any).

    No network here: a caller that can resolve DNS passes the MX hosts; without them only the
    provider's own domains are recognised. Among MX suffixes the longest match wins, so AOL's
    mx-aol.mail.gm0.yahoodns.net is AOL, not Yahoo.
    """
    domain = email.rsplit("@", 1)[-1].strip().lower().rstrip(".")
    if found := next((p for p in PROVIDERS.values() if domain in p.domains), None):
        return found
    best, best_len = PROVIDERS["generic"], 0
    for host in (h.strip().lower().rstrip(".") for h in mx_hosts):
        for p in PROVIDERS.values():
            for suffix in p.mx_suffixes:
                if (host == suffix or host.endswith("." + suffix)) and len(suffix) > best_len:
                    best, best_len = p, len(suffix)
    return best


def for_address(email: str) -> ProviderPreset:
    return detect(email)


def host_for(endpoint: Endpoint, email: str) -> str:
    """The endpoint's host with `{domain}` filled in from the address."""
    return endpoint.host.replace("{domain}", email.rsplit("@", 1)[-1].strip().lower())
