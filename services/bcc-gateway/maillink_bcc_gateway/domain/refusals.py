"""Every reason the gateway refuses mail, with its SMTP reply. Pure.

Each refusal is counted in maillink_bcc_refusals_total{reason}; the reply text says in words what
the sender can do about it, since a person reads it in a bounce.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    reason: str   # metric label
    code: int
    status: str   # RFC 3463 enhanced status code
    text: str

    @property
    def reply(self) -> str:
        return f"{self.code} {self.status} {self.text}"


def unknown_recipient(address: str) -> Refusal:
    return Refusal("unknown_recipient", 550, "5.1.1", f"<{address}> is not a Smart Bcc address here")


def unknown_sender(address: str) -> Refusal:
    return Refusal("unknown_sender", 550, "5.7.1", f"<{address}> is not the login address or a verified alternative "
                   "address of any user; add it as an alternative address and confirm it first")


def pending_sender(address: str) -> Refusal:
    return Refusal("pending_sender", 550, "5.7.1", f"<{address}> is not confirmed yet; follow the link in the "
                   "confirmation email first")


def other_company(address: str) -> Refusal:
    return Refusal("other_company", 550, "5.7.1", f"<{address}> does not belong to a user of this company")


def from_not_allowed(address: str) -> Refusal:
    return Refusal("from_not_allowed", 550, "5.7.1", f"From <{address}> is not the login address or a verified "
                   "alternative address of the sending user")


def from_missing() -> Refusal:
    return Refusal("from_missing", 550, "5.6.0", "the message has no From address")


def not_authenticated(domain: str, spf: str, dkim: str) -> Refusal:
    return Refusal("spf_dkim_failed", 550, "5.7.26", f"mail from {domain} failed both SPF ({spf}) and DKIM ({dkim}); "
                   "it cannot be told apart from forged mail")


def dmarc_reject(domain: str) -> Refusal:
    return Refusal("dmarc_reject", 550, "5.7.26", f"mail from {domain} fails DMARC and its policy is reject")


def authentication_unavailable(domain: str) -> Refusal:
    return Refusal("auth_temperror", 451, "4.7.0", f"SPF/DKIM for {domain} could not be checked now (DNS); try later")


def too_large(limit: int) -> Refusal:
    return Refusal("too_large", 552, "5.3.4", f"message exceeds the fixed maximum size of {limit} bytes")


def not_stored() -> Refusal:
    return Refusal("store_unavailable", 451, "4.3.0", "the message could not be stored now; try later")
