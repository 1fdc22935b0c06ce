"""Templates (private, or shared with the owner's company) and per-account signatures.
Only the owner changes or deletes; a shared template is readable by the whole company."""
from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, Field

from maillink_runtime.auth import Principal, acting_user, require
from maillink_schemas.headers import HeaderText
from maillink_schemas.scopes import Scope

from ..domain import smart_fields as sf


class TemplateBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    subject: HeaderText = ""
    html: str | None = None
    text: str | None = None
    shared: bool = Field(default=False, description="true: every user of the owner's company may use it.")


class TemplateView(TemplateBody):
    id: str
    owner: str


class SignatureBody(BaseModel):
    name: str = Field(default="default", max_length=200)
    html: str = Field(description="Sanitised when used; its text form is generated.")
    default: bool = Field(default=True, description="Appended when a send names no signature.")


class SignatureView(SignatureBody):
    id: str
    account_id: str


def _template(doc: dict) -> TemplateView:
    return TemplateView(id=doc["_id"], owner=doc["owner"], **{k: doc.get(k) for k in ("name", "subject", "html",
                                                                                     "text", "shared")})


def _check_syntax(body: TemplateBody) -> None:
    for source in (body.subject, body.html, body.text):
        try:
            if source:
                sf._HTML.parse(source)
        except Exception as exc:  # noqa: BLE001 - jinja2's TemplateSyntaxError, worded below
            raise HTTPException(422, f"The template cannot be read: {exc}") from None


def templates_router(templates, signatures, accounts) -> APIRouter:
    router = APIRouter(tags=["templates"])

    @router.post("/templates", status_code=201, response_model=TemplateView)
    async def create(body: TemplateBody, caller: Principal = Depends(require(Scope.TEMPLATES_WRITE))):
        _check_syntax(body)
        return _template(await templates.create(acting_user(caller), caller.company_id, body.model_dump()))

    @router.get("/templates", response_model=list[TemplateView])
    async def list_all(caller: Principal = Depends(require(Scope.TEMPLATES_READ))):
        return [_template(d) for d in await templates.list(acting_user(caller), caller.company_id)]

    @router.get("/templates/{template_id}", response_model=TemplateView)
    async def get(template_id: str, caller: Principal = Depends(require(Scope.TEMPLATES_READ))):
        doc = await templates.get(template_id, acting_user(caller), caller.company_id)
        if doc is None:
            raise HTTPException(404, "No such template you may see.")
        return _template(doc)

    @router.put("/templates/{template_id}", response_model=TemplateView)
    async def update(template_id: str, body: TemplateBody,
                     caller: Principal = Depends(require(Scope.TEMPLATES_WRITE))):
        _check_syntax(body)
        doc = await templates.update(template_id, acting_user(caller), body.model_dump())
        if doc is None:
            raise HTTPException(404, "No such template of yours.")
        return _template(doc)

    @router.delete("/templates/{template_id}", status_code=204)
    async def delete(template_id: str, caller: Principal = Depends(require(Scope.TEMPLATES_WRITE))):
        if not await templates.delete(template_id, acting_user(caller)):
            raise HTTPException(404, "No such template of yours.")
        return Response(status_code=204)

    async def own(account_id: str, user: str) -> None:
        account = await accounts.get(account_id)
        if account is None or account.user_id != user:
            raise HTTPException(404, "No such account of yours.")

    @router.post("/accounts/{account_id}/signatures", status_code=201, response_model=SignatureView)
    async def add_signature(account_id: str, body: SignatureBody,
                            caller: Principal = Depends(require(Scope.TEMPLATES_WRITE))):
        user = acting_user(caller)
        await own(account_id, user)
        doc = await signatures.create(account_id, user, body.model_dump())
        return SignatureView(id=doc["_id"], account_id=account_id, **body.model_dump())

    @router.get("/accounts/{account_id}/signatures", response_model=list[SignatureView])
    async def list_signatures(account_id: str, caller: Principal = Depends(require(Scope.TEMPLATES_READ))):
        user = acting_user(caller)
        await own(account_id, user)
        return [SignatureView(id=d["_id"], account_id=account_id, name=d.get("name", ""), html=d.get("html", ""),
                              default=bool(d.get("default"))) for d in await signatures.list(account_id, user)]

    @router.delete("/accounts/{account_id}/signatures/{signature_id}", status_code=204)
    async def delete_signature(account_id: str, signature_id: str,
                               caller: Principal = Depends(require(Scope.TEMPLATES_WRITE))):
        if not await signatures.delete(signature_id, account_id, acting_user(caller)):
            raise HTTPException(404, "No such signature of yours.")
        return Response(status_code=204)

    return router
