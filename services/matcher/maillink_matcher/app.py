"""Wires matcher together: the one place that knows every dependency."""
from fastapi import FastAPI

from maillink_runtime import bus
from maillink_runtime.auth.links import blob_link
from maillink_runtime.service import Service
from maillink_schemas import crm
from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.bcc import UserAddressesVerified
from maillink_schemas.mail import MessageExpunged, MessageReceived
from maillink_schemas.matcher import MailSettingsChanged, RecheckRequested, ThreadCommand
from maillink_schemas.outbound import MessageSent
from maillink_schemas.topics import Topic

from .adapters.facts_cache import FactsCache
from .adapters.facts_clock import FactsClock
from .adapters.alternative_addresses import AlternativeAddresses
from .adapters.messages import MessageStore
from .adapters.projections import CrmProjections
from .adapters.queries import QueryStore
from .adapters.settings import SettingsStore
from maillink_runtime.mongo import gated
from .adapters.writer_cache import CachedMessages
from .entrypoints.commands_http import commands_router
from .entrypoints.consumers import subscribe_batch
from .entrypoints.http import query_router
from .entrypoints.settings_http import settings_router
from .handlers.facts import FactsDeps, handle_facts
from .handlers.mail import MailDeps, handle_mail
from .settings import MatcherSettings

MAIL_TOPICS = {Topic.MESSAGE_RECEIVED: MessageReceived, Topic.MESSAGE_EXPUNGED: MessageExpunged,
               Topic.THREAD_COMMAND: ThreadCommand, Topic.MATCHER_RECHECK: RecheckRequested,
               Topic.MESSAGE_SENT: MessageSent}
FACT_TOPICS = {Topic.CRM_PERSONS: crm.PersonUpserted, Topic.CRM_ORGANIZATIONS: crm.OrganizationUpserted,
               Topic.CRM_DEALS: crm.DealUpserted, Topic.CRM_LEADS: crm.LeadUpserted,
               Topic.CRM_PROJECTS: crm.ProjectUpserted, Topic.CRM_USERS: crm.UserUpserted,
               Topic.ACCOUNT: AccountConfigured, Topic.SETTINGS: MailSettingsChanged,
               Topic.USER_ADDRESSES: UserAddressesVerified}
OUTPUT_TOPICS = [Topic.MESSAGE_LINKED, Topic.MESSAGE_UNLINKED, Topic.MESSAGE_IGNORED, Topic.MAILBOX_COMMAND]


def create_app(settings: MatcherSettings) -> FastAPI:
    service = Service("matcher", settings)
    # Every write through one gate: two bulk commands in flight deadlock the embedded store.
    broker, db = service.broker, gated(service.db)
    messages, projections, user_settings = MessageStore(db), CrmProjections(db), SettingsStore(db)
    queries = QueryStore(db, projections)
    topic = settings.topic

    async def publish(events) -> None:
        by_topic: dict[str, list] = {}
        for name, key, event in events:
            by_topic.setdefault(name, []).append((key, event))
        for name, keyed in by_topic.items():
            await bus.publish_many(broker, name, keyed)

    secrets = service.auth.link_secrets()
    if not secrets:
        raise ValueError("MAILLINK_LINK_KEYS must be set: the query API signs links to raw messages with it "
                         "(ingest verifies them with the same keys).")

    def raw_link(doc: dict, viewer: str) -> str | None:
        raw = doc.get("raw") or {}
        base = settings.blob_urls.get(raw.get("owner", ""))
        return blob_link(base, secrets[0], raw["blob_id"], viewer, settings.link_ttl_s) if base else None

    # The mail writer's caches: its own documents, and the facts it decides from (adapters/*_cache.py).
    clock = FactsClock(db)
    own_docs, known_facts = CachedMessages(messages), FactsCache(projections, user_settings, clock)
    mail = MailDeps(own_docs, known_facts, known_facts, publish,
                    {"linked": topic(Topic.MESSAGE_LINKED), "unlinked": topic(Topic.MESSAGE_UNLINKED),
                     "ignored": topic(Topic.MESSAGE_IGNORED), "mailbox": topic(Topic.MAILBOX_COMMAND)},
                    settings.default_visibility, known_facts)
    facts = FactsDeps(projections, user_settings, messages, publish, topic(Topic.MATCHER_RECHECK),
                      AlternativeAddresses(db), clock)

    def forget() -> None:
        own_docs.clear()
        known_facts.clear()

    async def on_mail(items) -> None:
        try:
            await handle_mail(items, mail)
        except BaseException:
            forget()   # cached documents may hold changes that were never written
            raise

    async def on_facts(items) -> None:
        await handle_facts(items, facts)

    subscribe_batch(broker, {topic(t): m for t, m in MAIL_TOPICS.items()}, service.group_id, "mail", on_mail,
                    retries=settings.handler_retries, max_records=settings.batch_size, on_rebalance=forget)
    subscribe_batch(broker, {topic(t): m for t, m in FACT_TOPICS.items()}, service.group_id, "facts", on_facts,
                    retries=settings.handler_retries, max_records=settings.batch_size)

    async def send_command(command: ThreadCommand) -> None:
        await bus.publish(broker, topic(Topic.THREAD_COMMAND), command, key=command.account_id)

    async def send_settings(event: MailSettingsChanged) -> None:
        await bus.publish(broker, topic(Topic.SETTINGS), event, key=f"{event.scope}:{event.owner_id}")

    async def ensure_indexes() -> None:
        await messages.ensure_indexes()

    return service.app(
        topics=[*MAIL_TOPICS, *FACT_TOPICS, *OUTPUT_TOPICS],
        on_start=[ensure_indexes],
        routers=[query_router(queries, raw_link), commands_router(queries, send_command),
                 settings_router(user_settings, send_settings)],
    )
