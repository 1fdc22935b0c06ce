"""What every service is made of: a Kafka broker, its own database, an HTTP app whose lifespan
starts and stops them in order, and /healthz + /metrics. Services add their own parts."""
import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager

import structlog

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError

from . import bus, failures, lag, logs, mongo
from .auth.keys import key_set
from .auth.middleware import AuthMiddleware
from .auth.settings import AuthSettings
from .http import answer_outages_in_words, ops_router, validation_error, with_documented_refusals
from .kafka_conn import kafka_security
from .settings import ServiceSettings
from .topics_admin import ensure_topics

Hook = Callable[[], Awaitable[object]]
log = structlog.get_logger()


async def accepts_tcp(bootstrap: str, timeout: float = 2.0) -> bool:
    """Whether any bootstrap address accepts a TCP connection at all."""
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host.strip("[]"), int(port)), timeout)
        except (OSError, asyncio.TimeoutError, ValueError):
            continue
        writer.close()
        return True
    return False


async def until_reachable(step: Hook, what: str, wait_s: float, bootstrap: str) -> None:
    """Run `step` until the dependency answers: a service started while Kafka is restarting (a
    deploy, a node reboot, `make chaos`) waits for it instead of exiting. Only "nobody listens"
    is waited out: aiokafka reports a refused password or an untrusted certificate as the same
    "Unable to bootstrap" error, so when a broker accepts the TCP connection the failure is
    configuration and ends the process at once, in words. An outage longer than `wait_s` ends it
    too, for its supervisor."""
    deadline, pause = time.monotonic() + wait_s, 0.5
    while True:
        try:
            return await step()
        except Exception as exc:  # noqa: BLE001 - only outages are retried, the rest re-raised
            if (not failures.is_outage(exc) or time.monotonic() + pause > deadline
                    or await accepts_tcp(bootstrap)):
                raise
            log.warning("dependency_unreachable_at_start", dependency=what, retry_in_s=pause,
                        message=f"{what} is not reachable yet; retrying in {pause:.1f} s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)


class Service:
    def __init__(self, name: str, settings: ServiceSettings) -> None:
        logs.configure(name, settings.log_level)
        self.name, self.settings = name, settings
        self.broker = bus.make_broker(settings.kafka_bootstrap_servers, f"maillink-{name}", kafka_security(settings))
        self.client = mongo.connect(settings.mongodb_url, **mongo.tls_options(settings.mongodb_tls_ca_file,
                                                                              settings.mongodb_tls_cert_key_file))
        self.db = self.client[settings.database(name.replace("-", "_"))]
        self.group_id = f"{settings.namespace}maillink-{name}"
        self.auth = AuthSettings()
        self.audience = f"maillink-{name}"

    def topic(self, name: str) -> str:
        return self.settings.topic(name)

    def app(self, *, topics: list[str] = (), on_start: list[Hook] = (), on_stop: list[Hook] = (),
            routers: list[APIRouter] = ()) -> FastAPI:
        """`on_start` hooks run once the broker is up; `on_stop` hooks run before it goes down."""

        @asynccontextmanager
        async def lifespan(_: FastAPI):
            wait_s = self.settings.startup_wait_s
            # The admin round trip proves the broker answers before FastStream's own start, which
            # is not safe to retry after a half-done connect.
            await until_reachable(lambda: ensure_topics(self.settings, list(topics)), "Kafka", wait_s,
                                  self.settings.kafka_bootstrap_servers)
            await self.broker.start()
            for hook in on_start:
                await hook()
            yield
            for hook in on_stop:
                await hook()
            await self.broker.stop()
            await self.client.close()

        app = FastAPI(title=f"maillink {self.name}", lifespan=lifespan)
        # Every route needs a token unless listed in auth.PUBLIC_ROUTES (default deny).
        app.add_middleware(AuthMiddleware, keys=key_set(self.auth.jwks_file, self.auth.jwks_url),
                           audience=self.audience, max_lifetime_s=self.auth.max_lifetime_s,
                           issuer=self.auth.issuer)
        app.add_exception_handler(RequestValidationError, validation_error)
        answer_outages_in_words(app)
        with_documented_refusals(app)
        app.include_router(ops_router({"kafka": lambda: self.broker.ping(timeout=3),
                                       "store": lambda: mongo.ping(self.db)},
                                      before_scrape=[lambda: lag.refresh(self.broker)]))
        for router in routers:
            app.include_router(router)
        return app
