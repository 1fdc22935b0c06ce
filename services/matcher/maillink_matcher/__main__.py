"""`python -m maillink_matcher` runs the service; `python -m maillink_matcher rebuild-indexes`
re-derives the CRM projection indexes (address -> persons, person -> open deals/leads/projects)
from the stored records, and the address -> messages index from the stored messages, e.g. after
a crash, a manual repair, or an upgrade from a version that did not keep it."""
import asyncio
import sys

from maillink_runtime import mongo
from maillink_runtime.serve import serve

from .settings import MatcherSettings


async def rebuild(settings: MatcherSettings) -> None:
    from .adapters.address_index import AddressIndex
    from .adapters.projections import CrmProjections
    from maillink_runtime.mongo import gated
    client = mongo.connect(settings.mongodb_url, **mongo.tls_options(settings.mongodb_tls_ca_file,
                                                                      settings.mongodb_tls_cert_key_file))
    try:
        db = gated(client[settings.database("matcher")])
        counts = await CrmProjections(db).rebuild_indexes()
        counts["address -> messages"] = await AddressIndex(db).rebuild(db["messages"])
        print("rebuilt:", ", ".join(f"{kind} {n}" for kind, n in counts.items()))
    finally:
        await client.close()


settings = MatcherSettings()
if sys.argv[1:] == ["rebuild-indexes"]:
    asyncio.run(rebuild(settings))
else:
    from .app import create_app
    serve(create_app(settings), settings.http_host, settings.http_port)
