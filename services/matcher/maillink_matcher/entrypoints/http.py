"""The query API: conversations of a person or deal, and a user's Mail tab."""
from fastapi import APIRouter, Query

from ..adapters.messages import MessageStore

_PUBLIC = ("thread_id", "subject", "date", "direction", "from", "to", "cc", "snippet", "has_attachments",
           "person_ids", "deal_id", "visibility", "user_id", "account_id", "source")


def _message_view(doc: dict) -> dict:
    return {"message_key": doc["_id"], **{k: doc.get(k) for k in _PUBLIC}}


def group_by_thread(docs: list[dict]) -> list[dict]:
    """Threads newest first (by their latest message), each thread's messages newest first."""
    threads: dict[str, dict] = {}
    for doc in docs:  # already sorted newest first
        thread = threads.setdefault(doc["thread_id"], {"thread_id": doc["thread_id"], "subject": doc.get("subject", ""),
                                                        "last_date": doc.get("sort_date"), "messages": []})
        thread["messages"].append(_message_view(doc))
    for thread in threads.values():
        thread["message_count"] = len(thread["messages"])
    return list(threads.values())


def query_router(messages: MessageStore) -> APIRouter:
    router = APIRouter(tags=["query"])
    viewer_q = Query(..., min_length=1, description="CRM user asking; private mail of other users is never shown.")

    @router.get("/persons/{person_id}/conversations")
    async def person_conversations(person_id: str, viewer: str = viewer_q, limit: int = Query(200, ge=1, le=1000)):
        docs = await messages.visible({"person_ids": person_id}, viewer, limit)
        return {"person_id": person_id, "threads": group_by_thread(docs)}

    @router.get("/deals/{deal_id}/conversations")
    async def deal_conversations(deal_id: str, viewer: str = viewer_q, limit: int = Query(200, ge=1, le=1000)):
        docs = await messages.visible({"deal_id": deal_id}, viewer, limit)
        return {"deal_id": deal_id, "threads": group_by_thread(docs)}

    @router.get("/users/{user_id}/mail")
    async def mail_tab(user_id: str, limit: int = Query(200, ge=1, le=1000)):
        # The Mail tab shows the user's own mailbox, so the viewer is the user.
        docs = await messages.visible({"user_id": user_id}, user_id, limit)
        return {"user_id": user_id, "threads": group_by_thread(docs)}

    return router
