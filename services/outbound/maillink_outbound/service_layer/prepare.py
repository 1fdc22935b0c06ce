"""Request -> the exact message to send: template and smart fields, signature, reply threading,
sanitising, right-to-left marking, text alternative, tracking, MIME, and the provider's size
limit. `load` gathers what the request names; `build` decides, and is pure."""
import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime

from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.mail import Address
from maillink_schemas.outbound import SendRequested
from maillink_schemas.providers import ProviderPreset
from maillink_schemas.tracking import TrackedLink
from maillink_schemas.tracking_token import Keyring

from ..adapters.tracker_urls import tracker_urls
from ..adapters.uploads import OWNER
from ..domain import html as htmlbody
from ..domain import rtl, smart_fields as sf
from ..domain.addresses import normalise
from ..domain.compose import Composed, Headers, Part, compose, limit_error, message_id_for
from ..domain.tracking import inject


class Unsendable(ValueError):
    """The request cannot become a message; `str(exc)` is worded for a person. `status` for HTTP."""

    def __init__(self, reason: str, status: int = 422, field: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.field = status, field


@dataclass(frozen=True)
class Loaded:
    account: AccountConfigured
    preset: ProviderPreset
    template: dict | None = None
    signature: dict | None = None
    person: dict | None = None
    deal: dict | None = None
    organization: dict | None = None
    original: dict | None = None          # the message replied to (ReplyIndex)
    blobs: dict[str, bytes] = field(default_factory=dict)   # stored uploads by blob id


@dataclass(frozen=True)
class Tracking:
    base_url: str
    keyring: Keyring  # maillink_schemas.tracking_token: the tracker verifies what this signs


@dataclass(frozen=True)
class Prepared:
    composed: Composed
    sender: Address
    recipients: list[str]
    bcc: list[Address]
    links: list[TrackedLink] = field(default_factory=list)
    tracking_id: str | None = None
    direction: str | None = None


_RE = re.compile(r"^\s*(re|aw|sv|odp)\s*:", re.IGNORECASE)


def build(cmd: SendRequested, got: Loaded, date: datetime, tracking: Tracking | None) -> Prepared:
    try:
        return _build(cmd, got, date, tracking)
    except Unsendable:
        raise
    except sf.MissingField as exc:
        raise Unsendable(str(exc), field=exc.field) from None
    except (sf.TemplateInvalid, ValueError) as exc:
        raise Unsendable(str(exc)) from None


def _build(cmd: SendRequested, got: Loaded, date: datetime, tracking: Tracking | None) -> Prepared:
    t = got.template or {}
    context = _context(got)
    subject = sf.render(cmd.subject or t.get("subject", ""), context, html=False)
    html_src = cmd.html if cmd.html is not None else t.get("html")
    text_src = cmd.text if cmd.text is not None else t.get("text")
    html = sf.render(html_src, context, html=True) if html_src is not None else None
    text = sf.render(text_src, context, html=False) if text_src is not None else None
    if html is None and text is None:
        raise Unsendable("The message has no body: give html, text or a template.")
    if got.signature:
        sig = htmlbody.sanitise(got.signature.get("html", ""))
        html = None if html is None else f'{html}<div class="signature"><br>-- <br>{sig}</div>'
        text = None if text is None else f"{text.rstrip()}\n\n-- \n{htmlbody.text_from_html(sig)}"
    sender = normalise(Address(email=got.account.email))
    message_id = message_id_for(got.account.account_id, cmd.request_id, sender)
    in_reply_to, references = [], []
    if cmd.reply_to_message:
        if got.original is None or not got.original.get("message_id"):
            raise Unsendable("The message this replies to is not known to outbound (yet).")
        original = got.original
        in_reply_to = [original["message_id"]]
        references = [*(original.get("references") or original.get("in_reply_to") or []), original["message_id"]]
        if not subject.strip():
            subject = f"Re: {_RE.sub('', original.get('subject', '')).strip()}"
        elif not _RE.match(subject):
            subject = f"Re: {subject}"
    direction, links, tid = None, [], None
    if html is not None:
        text_of_html = htmlbody.TextCollector() if text is None else None
        html, direction = rtl.mark(htmlbody.sanitise(html), also=text_of_html)
        if text_of_html is not None:
            text = text_of_html.text()
        if cmd.tracking and tracking:
            tid, urls = tracker_urls(tracking.base_url, tracking.keyring, message_id, date)
            html, links = inject(html, urls)
        html = f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{html}</body></html>'
    to, cc, bcc = ([normalise(a) for a in addrs] for addrs in (cmd.to, cmd.cc, cmd.bcc))
    if not (to or cc or bcc):
        raise Unsendable("The message has no recipient.")
    if len(to) + len(cc) + len(bcc) > got.preset.limits.recipients_per_message:
        raise Unsendable(f"{got.preset.name} accepts at most {got.preset.limits.recipients_per_message} "
                         "recipients per message.")
    headers = Headers(sender=sender, to=to, cc=cc, bcc=bcc, reply_to=[normalise(a) for a in cmd.reply_to],
                      subject=subject, message_id=message_id, date=date, in_reply_to=in_reply_to,
                      references=references)
    composed = compose(got.account.account_id, headers, text or "", html, _parts(cmd, got.blobs))
    if error := limit_error(len(composed.raw), got.preset.attachment_limit_bytes, got.preset.name):
        raise Unsendable(error, status=413)
    recipients = list(dict.fromkeys(a.email for a in (*to, *cc, *bcc)))
    return Prepared(composed, sender, recipients, bcc, links, tid, direction)


def _context(got: Loaded) -> dict[str, sf.Record]:
    p, d, o = got.person or {}, got.deal or {}, got.organization or {}
    return {
        "person": sf.person_record(p.get("name", ""), p.get("emails")) if p else sf.Record("person", {}),
        "deal": sf.deal_record(d.get("title", ""), d.get("status", "")) if d else sf.Record("deal", {}),
        "organization": sf.organization_record(o.get("name", ""), o.get("domains")) if o
        else sf.Record("organization", {}),
        "sender": sf.sender_record(got.account.email, None),
    }


def _parts(cmd: SendRequested, blobs: dict[str, bytes]) -> list[Part]:
    parts = []
    for a in cmd.attachments:
        if a.data_base64 is None:
            if a.blob_id not in blobs:
                raise Unsendable(f"The attachment {a.filename!r} refers to content outbound does not have.")
            parts.append(Part(a.filename, a.content_type, blobs[a.blob_id], a.content_id))
            continue
        try:
            data = base64.b64decode(a.data_base64, validate=True)
        except (binascii.Error, ValueError):
            raise Unsendable(f"The attachment {a.filename!r} is not valid base64.") from None
        parts.append(Part(a.filename, a.content_type, data, a.content_id))
    return parts


async def load(cmd: SendRequested, account: AccountConfigured, preset: ProviderPreset, stores) -> Loaded:
    """`stores`: templates, signatures, crm, replies, uploads and a read cache (see app.py). Missing
    records stay None and surface as missing smart fields only if the template uses them."""
    cached = stores.cache.get
    template = None
    if cmd.template_id:
        template = await cached(("template", cmd.template_id, cmd.user_id, account.company_id),
                                lambda: stores.templates.get(cmd.template_id, cmd.user_id, account.company_id))
        if template is None:
            raise Unsendable(f"There is no template {cmd.template_id!r} you may use.", status=422)
    if cmd.signature_id:
        signature = await cached(("signature", cmd.signature_id, account.account_id),
                                 lambda: stores.signatures.get(cmd.signature_id, account.account_id))
        if signature is None:
            raise Unsendable(f"There is no signature {cmd.signature_id!r} on this account.")
    else:
        signature = await cached(("signature", None, account.account_id),
                                 lambda: stores.signatures.default(account.account_id)) if cmd.signature else None
    crm = stores.crm
    person = await cached(("person", cmd.context.person_id), lambda: crm.persons.get(cmd.context.person_id))
    deal = await cached(("deal", cmd.context.deal_id), lambda: crm.deals.get(cmd.context.deal_id))
    org_id = cmd.context.organization_id or (person or {}).get("organization_id") or (deal or {}).get("organization_id")
    organization = await cached(("organization", org_id), lambda: crm.organizations.get(org_id))
    original = await stores.replies.get(cmd.reply_to_message) if cmd.reply_to_message else None
    blobs = {}
    for a in cmd.attachments:
        # Only outbound's own uploads can be read; other services' blobs need their blob API (not yet).
        if a.data_base64 is None and a.blob_id and a.blob_owner == OWNER:
            if (data := await stores.uploads.get(a.blob_id)) is not None:
                blobs[a.blob_id] = data
    return Loaded(account, preset, template, signature, person, deal, organization, original, blobs)


async def store_uploads(cmd: SendRequested, uploads) -> SendRequested:
    """The same request with every inline upload stored and replaced by its reference."""
    if not any(a.data_base64 for a in cmd.attachments):
        return cmd
    attachments = []
    for a in cmd.attachments:
        if a.data_base64 is not None:
            try:
                data = base64.b64decode(a.data_base64, validate=True)
            except (binascii.Error, ValueError):
                raise Unsendable(f"The attachment {a.filename!r} is not valid base64.") from None
            a = a.model_copy(update={"data_base64": None, "blob_id": await uploads.put(data), "blob_owner": OWNER})
        attachments.append(a)
    return cmd.model_copy(update={"attachments": attachments})
