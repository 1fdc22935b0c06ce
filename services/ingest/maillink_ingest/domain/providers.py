"""Which provider preset an account uses, and the IMAP endpoint that follows from it. Pure.

The accounts API calls this so a person only types an address and a password or token: the
preset (named, or detected from the address's domain) gives host, port and TLS mode; whatever
the request says explicitly wins.
"""
from collections.abc import Mapping

from maillink_schemas.accounts import AuthMethod, ImapEndpoint, Security
from maillink_schemas.providers import PROVIDERS, ProviderPreset, detect, host_for


class UnknownProvider(ValueError):
    pass


def preset_for(provider: str | None, email: str) -> ProviderPreset:
    """`provider` names a preset; None or "auto" detects it from the address (domain lists only)."""
    if provider in (None, "", "auto"):
        return detect(email)
    if provider not in PROVIDERS:
        raise UnknownProvider(f"Unknown provider “{provider}”; known: {', '.join(sorted(PROVIDERS))}.")
    return PROVIDERS[provider]


def auth_for(chosen: ProviderPreset, requested: AuthMethod | None) -> AuthMethod | None:
    """What the request asked for; else XOAUTH2 where the provider accepts nothing else (Microsoft
    365, Outlook.com), so a token is never sent as a LOGIN password; else None (password)."""
    return requested or (AuthMethod.XOAUTH2 if chosen.auth == [AuthMethod.XOAUTH2] else None)


def resolve_endpoint(provider: str | None, email: str, overrides: Mapping[str, object]) -> ImapEndpoint:
    """The IMAP endpoint: `overrides` (host, port, security; None = not given) over the preset's.

    Raises UnknownProvider for an unknown id, and ValueError when neither gives a host (self-hosted
    presets such as Exchange or Zimbra, and the generic entry, need the account's own host).
    """
    chosen = preset_for(provider, email)
    base = chosen.imap
    host = overrides.get("host") or (host_for(base, email) if base else None)
    if not host:
        raise ValueError(f"{chosen.name} needs the IMAP server's host name (imap_host).")
    port = overrides.get("port") or (base.port if base else 993)
    security = overrides.get("security") or (base.security if base else Security.SSL)
    return ImapEndpoint(host=str(host), port=int(port), security=Security(security))
