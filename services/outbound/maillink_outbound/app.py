"""Wires outbound together."""
from contextlib import asynccontextmanager

from fastapi import FastAPI

from maillink_runtime import bus, logs, mongo
from maillink_runtime.http import ops_router

from .settings import Settings


def create_app(settings: Settings) -> FastAPI:
    logs.configure("outbound", settings.log_level)
    broker = bus.make_broker(settings.kafka_bootstrap_servers, "maillink-outbound")
    client = mongo.connect(settings.mongodb_url)
    db = client[settings.database("outbound")]

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await broker.start()
        yield
        await broker.stop()
        await client.close()

    app = FastAPI(title="maillink outbound", lifespan=lifespan)
    app.include_router(ops_router({"kafka": lambda: broker.ping(timeout=3), "store": lambda: mongo.ping(db)}))
    return app
