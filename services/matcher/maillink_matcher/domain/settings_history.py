"""Which settings were in force when a message arrived. Pure.

A setting applies to mail received after it took effect: changing the sharing default or the
blocklist never touches messages already synced (MISSION.md §13, §15).
"""
from datetime import datetime

from maillink_schemas.mail import Visibility
from maillink_schemas.matcher import LinkingMode

from .blocklist import normalise
from .facts import Settings


def in_force(history: list[dict], at: datetime) -> dict | None:
    """The latest entry of `history` (each with `effective_at`) that took effect at or before `at`."""
    current = None
    for entry in sorted(history, key=lambda e: (e["effective_at"], e.get("version", 0))):
        if entry["effective_at"] <= at:
            current = entry
    return current


def settings_at(user_history: list[dict], company_history: list[dict], at: datetime,
                default_visibility: Visibility = Visibility.SHARED) -> Settings:
    user, company = in_force(user_history, at), in_force(company_history, at)
    return Settings(
        blocklist=frozenset(normalise(e) for e in (user or {}).get("blocklist", [])),
        company_blocklist=frozenset(normalise(e) for e in (company or {}).get("blocklist", [])),
        sharing_default=Visibility((user or {}).get("sharing_default", default_visibility)),
        linking_mode=LinkingMode((user or {}).get("linking_mode", LinkingMode.AUTOMATIC)),
    )
