"""The query API: the Mail tab, the conversations of a person, organization, deal, lead or project,
and one thread. The viewer is always the token's acting user, never a parameter; what they see is
decided by `domain.visibility.can_see` (adapters/queries.py). Each message carries a short-lived
link to its raw MIME, signed for this viewer (runtime/auth/links.py)."""
from enum import StrEnum

from fastapi import APIRouter, Depends, HTTPException, Query

from maillink_runtime.auth import Principal, acting_user, require
from maillink_schemas.scopes import Scope

from ..adapters.queries import QueryStore
from ..domain.facts import KINDS
from .views import Conversations, RawLink, Suggestion, ThreadDetail, group_by_thread, message_view


class MailFilter(StrEnum):
    ALL = "all"            # linked and unlinked (never the ignored)
    LINKED = "linked"
    UNLINKED = "unlinked"
    IGNORED = "ignored"    # blocked mail, so the user can check the blocklist


def query_router(queries: QueryStore, raw_link: RawLink) -> APIRouter:
    router = APIRouter(tags=["query"])
    reader = Depends(require(Scope.MAIL_READ))
    limit_q = Query(100, ge=1, le=500, description="Messages per page.")
    cursor_q = Query(None, description="next_cursor of the previous page.")

    async def conversations(criteria: dict, caller: Principal, limit: int, cursor: str | None,
                            statuses: tuple[str, ...] = ("active",), refs: list[str] | None = None) -> Conversations:
        """`refs`: a record's conversations, answered from its record views (`_id` reads)."""
        viewer = await queries.viewer(acting_user(caller), caller.company_id)
        try:
            docs, next_cursor = await (queries.record_page(viewer, refs, limit, cursor) if refs is not None
                                       else queries.page(viewer, criteria, limit, cursor, statuses))
        except ValueError as exc:
            raise HTTPException(422, "invalid cursor") from exc
        return Conversations(threads=group_by_thread(docs, raw_link, viewer.user_id), next_cursor=next_cursor)

    @router.get("/persons/{person_id}/conversations", response_model=Conversations)
    async def person_conversations(person_id: str, caller: Principal = reader, limit: int = limit_q,
                                   cursor: str | None = cursor_q):
        return await conversations({}, caller, limit, cursor, refs=[f"person:{person_id}"])

    @router.get("/organizations/{organization_id}/conversations", response_model=Conversations)
    async def organization_conversations(organization_id: str, caller: Principal = reader, limit: int = limit_q,
                                         cursor: str | None = cursor_q):
        persons = await queries.persons_of_organization(organization_id)
        return await conversations({}, caller, limit, cursor, refs=[f"person:{p}" for p in persons])

    for kind in KINDS:
        def route(kind=kind.value):
            async def record_conversations(record_id: str, caller: Principal = reader, limit: int = limit_q,
                                           cursor: str | None = cursor_q):
                return await conversations({}, caller, limit, cursor, refs=[f"{kind}:{record_id}"])
            record_conversations.__name__ = f"{kind}_conversations"
            router.get(f"/{kind}s/{{record_id}}/conversations", response_model=Conversations,
                       summary=f"Conversations of a {kind}")(record_conversations)
        route()

    async def mail_tab(caller: Principal, filter_: MailFilter, folder: str | None, limit: int, cursor: str | None):
        # Read from the user's own record view (`user:<id>`, by `_id`), not by filtering messages.
        linked = filter_ == MailFilter.LINKED if filter_ in (MailFilter.LINKED, MailFilter.UNLINKED) else None
        statuses = ("ignored",) if filter_ == MailFilter.IGNORED else ("active",)
        viewer = await queries.viewer(acting_user(caller), caller.company_id)
        try:
            docs, next_cursor = await queries.mail_tab(viewer, linked, folder or None, statuses, limit, cursor)
        except ValueError as exc:
            raise HTTPException(422, "invalid cursor") from exc
        return Conversations(threads=group_by_thread(docs, raw_link, viewer.user_id), next_cursor=next_cursor)

    @router.get("/mail", response_model=Conversations, summary="The acting user's Mail tab")
    async def my_mail(caller: Principal = reader, filter: MailFilter = MailFilter.ALL,  # noqa: A002 - query name
                      folder: str | None = None, limit: int = limit_q, cursor: str | None = cursor_q):
        return await mail_tab(caller, filter, folder, limit, cursor)

    @router.get("/users/{user_id}/mail", response_model=Conversations)
    async def user_mail(user_id: str, caller: Principal = reader, filter: MailFilter = MailFilter.ALL,  # noqa: A002
                        folder: str | None = None, limit: int = limit_q, cursor: str | None = cursor_q):
        # The Mail tab is the user's own mailbox: only that user may open it, admins included.
        if acting_user(caller) != user_id:
            raise HTTPException(403, "The Mail tab can only be opened by its own user.")
        return await mail_tab(caller, filter, folder, limit, cursor)

    @router.get("/threads/{thread_id}", response_model=ThreadDetail)
    async def thread(thread_id: str, caller: Principal = reader, limit: int = limit_q, cursor: str | None = cursor_q):
        viewer = await queries.viewer(acting_user(caller), caller.company_id)
        live = await queries.thread_doc(thread_id) or {"_id": thread_id}
        try:
            docs, next_cursor = await queries.thread_page(viewer, live, limit, cursor)
        except ValueError as exc:  # a cursor that is not ours (the other pages do the same, above)
            raise HTTPException(422, "invalid cursor") from exc
        if not docs:
            raise HTTPException(404, "No such thread, or none of it is visible to you.")
        owner = docs[0]["user_id"]
        suggestions: list[Suggestion] = []
        if owner == viewer.user_id:
            for kind, ids in (docs[0].get("suggestions") or {}).items():
                titles = await queries.titles(kind, ids)
                suggestions += [Suggestion(kind=kind, record_id=i, title=titles.get(i, "")) for i in ids]
        links = live.get("links") or {}
        return ThreadDetail(thread_id=live["_id"], subject=docs[-1].get("subject", ""), owner_id=owner,
                            deal_id=links.get("deal"), lead_id=links.get("lead"), project_id=links.get("project"),
                            visibility=live.get("visibility"), suggestions=suggestions, next_cursor=next_cursor,
                            messages=[message_view(d, raw_link(d, viewer.user_id)) for d in docs])

    return router
