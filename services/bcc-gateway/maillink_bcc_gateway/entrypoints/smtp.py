"""The SMTP side: aiosmtpd hooks that translate each command into a decision and a reply.

Senders are checked at MAIL, recipients at RCPT (unknown ones get 550 there, before any data is
sent), the From header, SPF/DKIM/DMARC and the rest at the end of DATA. The server runs on the
service's own event loop, beside the broker and the store clients.
"""
import asyncio
import logging
import re
import ssl

import aiosmtpd.smtp
import structlog
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session

from .. import intake
from ..domain import refusals, senders
from ..domain.recipients import parse_recipient
from ..intake import Arrival, IntakeDeps, refuse
from .smtp_data import Verdict, read_data

log = structlog.get_logger()


_stock_sanitized_log = aiosmtpd.smtp.sanitized_log


def _sanitized_log(func, msg, *args, **kwargs) -> None:
    """aiosmtpd's sanitized_log, which masks AUTH secrets in the arguments *before* calling the log
    method, and so twice per command even with its logger off (~12 us a message under make bench-bcc).
    Here nothing is sanitised for a level that is off; what is logged is sanitised exactly as before."""
    logger, level = getattr(func, "__self__", None), _LEVELS.get(getattr(func, "__name__", ""))
    if isinstance(logger, logging.Logger) and level is not None and not logger.isEnabledFor(level):
        return
    _stock_sanitized_log(func, msg, *args, **kwargs)


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# Applied where _handle_client looks it up (aiosmtpd 1.4.6, pinned; a module-level name of aiosmtpd.smtp).
aiosmtpd.smtp.sanitized_log = _sanitized_log


class GatewayHandler:
    def __init__(self, deps: IntakeDeps, domain: str) -> None:
        self._deps, self._domain = deps, domain

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        refusal = senders.check_envelope_sender(address, self._deps.directory.owner(address))
        if refusal:
            return refuse(refusal)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        directory = self._deps.directory
        recipient = parse_recipient(address, self._domain)
        company = directory.company_of(recipient.token) if recipient else None
        sender = directory.owner(envelope.mail_from or "")
        if sender is None:  # MAIL was refused or the directory changed since; ask again from MAIL
            return refuse(refusals.unknown_sender(envelope.mail_from or ""))
        refusal = senders.check_recipient(address, company, envelope.mail_from, sender)
        if refusal:
            return refuse(refusal)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        if recipient.deal_id and not getattr(envelope, "deal_id", None):
            envelope.deal_id = recipient.deal_id  # the first deal-specific address names the deal
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        arrival = Arrival(peer_ip=session.peer[0], helo=session.host_name or "", mail_from=envelope.mail_from,
                          recipients=list(envelope.rcpt_tos), deal_id=getattr(envelope, "deal_id", None),
                          raw=envelope.original_content or b"")
        # The sender and peer are named in the few log lines that need them (not a bound context:
        # binding structlog's contextvars was ~0.01 ms a message under make bench-bcc's load, py-spy).
        refusal = await intake.accept(arrival, self._deps)
        return refuse(refusal, mail_from=arrival.mail_from, peer=arrival.peer_ip) if refusal else "250 2.0.0 Message accepted"


# `<local@domain>` where both are plain dot-atoms (RFC 5322 atext, no quoting, comments or literals):
# what nearly every client sends, and where email's header parser returns the text as written.
_PLAIN_ANGLE_ADDR = re.compile(r"<([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
                               r"@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>")


class GatewaySMTP(SMTP):
    """aiosmtpd's SMTP with three narrow changes; the sink of make bench-bcc stays stock."""

    def __init__(self, *args, **kwargs) -> None:
        # The content stays bytes, as sent: the message key, DKIM and the blob's sha256 are all
        # computed from them (and decode_data=False makes aiosmtpd announce 8BITMIME). smtp_DATA below
        # relies on it and has no text branch.
        if kwargs.get("decode_data"):
            raise ValueError("GatewaySMTP keeps message bytes as sent; decode_data must be False")
        super().__init__(*args, **{**kwargs, "decode_data": False})

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd parses every MAIL/RCPT address with email's full RFC 5322 parser (and defines a
        # class on each call): ~0.1 ms a message. A plain `<local@domain>` gets the same (address,
        # rest) from a regex; anything else (quotes, comments, literals, UTF-8, `<>`) still goes to
        # aiosmtpd. tests/unit/test_bcc_smtp_addresses.py compares the two.
        match = _PLAIN_ANGLE_ADDR.match(arg)
        rest = arg[match.end():] if match else ""
        if rest[:1] in (" ", "\t"):  # the parser takes folding white space after `>` (str.lstrip)
            rest = rest.lstrip()
        if match is None or rest[:1] == "(":  # a comment after `>`: the parser's business
            return super()._getaddr(arg)
        if self.local_part_limit and len(match.group(1)) > self.local_part_limit:
            return None, None
        return match.group(1) + "@" + match.group(2), rest

    async def smtp_DATA(self, arg: str) -> None:
        # aiosmtpd 1.4.6's smtp_DATA (pinned in requirements.txt: re-check this copy on an upgrade)
        # with its line-by-line reader replaced by smtp_data.read_data
        # (a few reads per message instead of ~30 lines, each with a readuntil, checks and joins;
        # same content and replies, tests/unit/test_bcc_smtp_data.py). Everything before the 354 and
        # after the content is aiosmtpd's code; this server has only the new handle_DATA hook.
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            verdict, content = await read_data(self._reader, self.data_size_limit, self.line_length_limit)
        except asyncio.CancelledError:  # the connection was reset during DATA (eof_received cancels)
            self._writer.close()
            raise
        except asyncio.IncompleteReadError:  # the stream ended before the end marker
            self._writer.close()
            return
        if verdict is not Verdict.OK:
            await self.push(verdict.value)
            self._set_post_data_state()
            return
        self.envelope.content = self.envelope.original_content = content  # bytes: see __init__
        status = await self._call_handler_hook("DATA") if "DATA" in self._handle_hooks else MISSING
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def push(self, status: str) -> None:
        # aiosmtpd answers over-size mail itself (SIZE at MAIL, or the running count during DATA);
        # this is the one place that sees that reply, so it is counted here.
        if status.startswith("552"):
            intake.REFUSED.labels("too_large").inc()
        await super().push(status)


async def serve_smtp(handler: GatewayHandler, host: str, port: int, hostname: str, max_bytes: int,
                     tls: ssl.SSLContext | None) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()

    def session() -> GatewaySMTP:
        # decode_data=False keeps the bytes as sent and makes aiosmtpd announce 8BITMIME, so no relay
        # downgrades an 8bit body to quoted-printable on its way here (that would change the key).
        return GatewaySMTP(handler, hostname=hostname, data_size_limit=max_bytes, enable_SMTPUTF8=True,
                           decode_data=False, tls_context=tls, require_starttls=False, loop=loop,
                           ident="maillink Smart Bcc")
    # reuse_port: several gateway processes (instances) may share one SMTP port; the kernel spreads
    # connections among them.
    server = await loop.create_server(session, host=host, port=port, reuse_port=True)
    log.info("smtp_listening", host=host, port=port, starttls=tls is not None)
    return server
