"""HTTP side: the caller's Smart Bcc address, their alternative addresses, and the public
confirmation page. Routes translate; addressbook.py decides."""
import html
import re
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, field_validator

from maillink_runtime.auth import Principal, acting_user, require
from maillink_schemas.headers import HeaderText
from maillink_schemas.scopes import Scope

from .. import addressbook
from ..adapters.users import UserStore
from ..addressbook import AddressBookDeps, AddressTaken
from ..domain.recipients import company_address

_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]{2,}$")


class NewAddress(BaseModel):
    email: HeaderText = Field(description="The alternative address to send Smart Bcc mail from.")

    @field_validator("email")
    @classmethod
    def _is_address(cls, value: str) -> str:
        if not _EMAIL.match(value.strip()):
            raise ValueError("must be a single email address, e.g. jan@acme.cz")
        return value.strip().lower()


class AlternativeAddress(BaseModel):
    email: str = Field(description="The address, lower-cased.")
    status: str = Field(description="pending (confirmation mail sent, unusable) or verified (usable).")
    link_expires_at: datetime | None = Field(default=None, description="When the confirmation link expires (pending).")
    verified_at: datetime | None = None


class SmartBcc(BaseModel):
    address: str = Field(description="The company's Smart Bcc address; put it in Bcc of any message.")
    deal_address_pattern: str = Field(description="Deal-specific form: links the message to that deal.")
    login_email: str | None = Field(description="The caller's login address, always allowed to send.")
    alternatives: list[AlternativeAddress] = Field(description="The caller's alternative sending addresses.")


def _view(doc: dict) -> AlternativeAddress:
    pending = doc["status"] == "pending"
    return AlternativeAddress(email=doc["address"], status=doc["status"], verified_at=doc.get("verified_at"),
                              link_expires_at=datetime.fromtimestamp(doc["expires"], timezone.utc) if pending else None)


def addresses_router(deps: AddressBookDeps, users: UserStore, domain: str) -> APIRouter:
    router = APIRouter(prefix="/bcc")

    async def company_of(caller: Principal, user_id: str) -> tuple[str | None, dict | None]:
        user = await users.get(user_id)
        return caller.company_id or (user or {}).get("company_id"), user

    @router.get("/addresses")
    async def list_addresses(caller: Principal = Depends(require(Scope.BCC_READ))) -> SmartBcc:
        user_id = acting_user(caller)
        company_id, user = await company_of(caller, user_id)
        if company_id is None:
            raise HTTPException(404, "No company is known for this user yet, so there is no Smart Bcc address.")
        address = company_address(company_id, domain)
        return SmartBcc(address=address, deal_address_pattern=address.replace("@", "+deal-<deal id>@"),
                        login_email=(user or {}).get("login_email"),
                        alternatives=[_view(d) for d in await deps.addresses.of_user(user_id)])

    @router.post("/addresses", status_code=202)
    async def add_address(body: NewAddress, caller: Principal = Depends(require(Scope.BCC_WRITE))) -> AlternativeAddress:
        user_id = acting_user(caller)
        company_id, _ = await company_of(caller, user_id)
        try:
            return _view(await addressbook.add(user_id, company_id, body.email, deps))
        except AddressTaken as exc:
            raise HTTPException(409, str(exc)) from exc

    @router.delete("/addresses/{email}", status_code=204)
    async def remove_address(email: str, caller: Principal = Depends(require(Scope.BCC_WRITE))) -> Response:
        if not await addressbook.remove(acting_user(caller), email, deps):
            raise HTTPException(404, f"{email} is not one of your alternative addresses.")
        return Response(status_code=204)

    # Public (PUBLIC_ROUTES): followed from the confirmation email, where no token exists. GET only
    # shows what would happen, because mail scanners prefetch links; the button POSTs.
    @router.get("/confirm", response_class=HTMLResponse)
    async def confirm_page(token: str = Query("", max_length=400)) -> HTMLResponse:
        state, doc = await addressbook.peek(token, deps)
        if state != "valid":
            return _page(state, doc, status=410 if state in ("expired", "used") else 400)
        address = html.escape(doc["address"])
        return HTMLResponse(_html("Confirm your address", f"<p>Confirm <b>{address}</b> as an address you send "
                                  "Smart Bcc mail from?</p><form method='post'><input type='hidden' name='token' "
                                  f"value='{html.escape(token, quote=True)}'><button type='submit'>Confirm</button>"
                                  "</form>"))

    @router.post("/confirm", response_class=HTMLResponse)
    async def confirm(token: str = Form("", max_length=400)) -> HTMLResponse:
        state, doc = await addressbook.confirm(token, deps)
        return _page(state, doc, status={"verified": 200, "expired": 410, "used": 410, "taken": 409}.get(state, 400))

    return router


_WORDS = {
    "verified": "Thank you: {address} is confirmed. Mail you send from it to your company's Smart Bcc address is "
                "now accepted.",
    "expired": "This confirmation link has expired. Add the address again to get a new link.",
    "used": "This confirmation link was already used or replaced by a newer one.",
    "invalid": "This confirmation link is not valid. Check that it was copied whole.",
    "taken": "{address} is already a sending address of another user, so it cannot be confirmed for you.",
}


def _page(state: str, doc: dict | None, status: int) -> HTMLResponse:
    address = html.escape((doc or {}).get("address", "the address"))
    return HTMLResponse(_html("Smart Bcc address", f"<p>{_WORDS[state].format(address=address)}</p>"), status)


def _html(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1>{body}</body></html>")
