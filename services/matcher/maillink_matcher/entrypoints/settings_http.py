"""The settings API, per user (scope settings:read / settings:write): blocklist, sharing default,
linking mode, email-links preference and sync-back; and the company-wide blocklist (scope
settings:admin, the token's company). Each change is a MailSettingsChanged event on
mail.settings.v1 (ingest reads sync-back from it); the facts consumer stores it with the time it
took effect, and it applies to mail received from then on."""
import time

from fastapi import APIRouter, Depends, HTTPException

from maillink_runtime.auth import Principal, acting_user, require
from maillink_schemas.base import deterministic_id, utcnow
from maillink_schemas.matcher import MailSettingsChanged, SettingsScope
from maillink_schemas.scopes import Scope

from ..adapters.settings import SettingsStore
from ..domain.blocklist import normalise
from .commands_http import _wait
from .views import CompanyBlocklist, MailSettings, SettingsChange




def _entries(entries: list[str]) -> list[str]:
    cleaned = sorted({normalise(e) for e in entries if e.strip()})
    bad = [e for e in cleaned if e.count("@") != 1 or e.endswith("@") or len(e) > 320 or any(c.isspace() for c in e)]
    if bad:
        raise HTTPException(422, f"not an address or @domain: {', '.join(bad[:5])}")
    return cleaned


def settings_router(store: SettingsStore, send) -> APIRouter:
    router = APIRouter(tags=["settings"])
    reader, writer = Depends(require(Scope.SETTINGS_READ)), Depends(require(Scope.SETTINGS_WRITE))
    admin = Depends(require(Scope.SETTINGS_ADMIN))

    async def publish(scope: SettingsScope, owner: str, company: str | None, values: dict) -> int:
        version = time.time_ns() // 1000
        now = utcnow()
        await send(MailSettingsChanged(event_id=deterministic_id("settings", scope, owner, str(version)),
                                       occurred_at=now, scope=scope, owner_id=owner, company_id=company,
                                       version=version, **values))

        async def stored() -> bool:
            return ((await store.current(scope, owner)) or {}).get("version", 0) >= version
        await _wait(stored)
        return version

    @router.get("/settings", response_model=MailSettings)
    async def get_settings(caller: Principal = reader):
        current = await store.current("user", acting_user(caller))
        return MailSettings(**current) if current else MailSettings()

    @router.put("/settings", response_model=MailSettings)
    async def change_settings(change: SettingsChange, caller: Principal = writer):
        user = acting_user(caller)
        current = await store.current("user", user)
        values = (MailSettings(**current) if current else MailSettings()).model_dump(exclude={"version"})
        given = change.model_dump(exclude_none=True)
        if "blocklist" in given:
            given["blocklist"] = _entries(given["blocklist"])
        values.update(given)
        version = await publish(SettingsScope.USER, user, caller.company_id, values)
        return MailSettings(**values, version=version)

    @router.get("/company/blocklist", response_model=CompanyBlocklist)
    async def get_company_blocklist(caller: Principal = admin):
        company = _company(caller)
        current = await store.current("company", company) or {}
        return CompanyBlocklist(blocklist=current.get("blocklist", []), version=current.get("version"))

    @router.put("/company/blocklist", response_model=CompanyBlocklist)
    async def set_company_blocklist(body: CompanyBlocklist, caller: Principal = admin):
        company = _company(caller)
        entries = _entries(body.blocklist)
        version = await publish(SettingsScope.COMPANY, company, company, {"blocklist": entries})
        return CompanyBlocklist(blocklist=entries, version=version)

    return router


def _company(caller: Principal) -> str:
    if not caller.company_id:
        raise HTTPException(403, "The token names no company.")
    return caller.company_id
