"""The HTTP side every service has: /healthz (Kafka and store connectivity) and /metrics."""
import asyncio
from collections.abc import Awaitable, Callable

import structlog
from aiokafka.errors import KafkaError
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import failures

Check = Callable[[], Awaitable[object]]
log = structlog.get_logger(__name__)

CATCHING_UP = "maillink is catching up: the service's {what} is unavailable; nothing is lost."
RETRY_AFTER_S = 5


def ops_router(checks: dict[str, Check], before_scrape: list[Check] = ()) -> APIRouter:
    """`before_scrape` hooks refresh gauges that need I/O (consumer lag) just before /metrics answers."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> JSONResponse:
        results = {}
        for name, check in checks.items():
            try:
                ok = await asyncio.wait_for(check(), timeout=3)
                results[name] = "ok" if ok is not False else "unreachable"
            except Exception as exc:  # noqa: BLE001 - a health check reports, it never raises
                results[name] = f"unreachable: {type(exc).__name__}"
        healthy = all(v == "ok" for v in results.values())
        return JSONResponse({"status": "ok" if healthy else "degraded", "checks": results},
                            status_code=200 if healthy else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        for hook in before_scrape:
            try:
                await asyncio.wait_for(hook(), timeout=3)
            except Exception:  # noqa: BLE001 - the other metrics are still worth answering with
                pass
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's default 422 echoes the offending input, and a request body can carry a password:
    # say where and what is wrong, never what was sent.
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


async def dependency_outage(_: Request, exc: Exception) -> JSONResponse:
    # The store or the broker being away is not the caller's fault and loses nothing: a 503 in words
    # with Retry-After, instead of a bare 500 (seen on the matcher's Mail tab during a 30 s store
    # outage). The driver's repr, with addresses and errno, goes to the log only.
    what = "message broker" if isinstance(exc, KafkaError) else "database"
    log.warning("dependency_unavailable", what=what, error=repr(exc))
    return JSONResponse({"detail": CATCHING_UP.format(what=what)}, status_code=503,
                        headers={"Retry-After": str(RETRY_AFTER_S)})


def answer_outages_in_words(app: FastAPI) -> None:
    """Every route of the service: a dependency outage (failures.OUTAGE_TYPES) is a worded 503."""
    for kind in failures.OUTAGE_TYPES:
        app.add_exception_handler(kind, dependency_outage)


def document_refusals(schema: dict) -> dict:
    """A 422 carries either FastAPI's list of field errors (validation_error above) or one sentence
    from a service's own check (HTTPException(422, "Plain-text IMAP is only allowed...")). FastAPI
    documents only the list, so clients generated from the document, and schemathesis, rejected
    the sentence. The document now says both (found by tests/e2e/test_schemathesis.py)."""
    error = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
    detail = (error or {}).get("properties", {}).get("detail")
    if detail is not None and "anyOf" not in detail:
        error["properties"]["detail"] = {
            "title": "Detail", "anyOf": [{k: v for k, v in detail.items() if k != "title"}, {"type": "string"}],
            "description": "The fields that are wrong (a list), or the reason the request was refused (a sentence)."}
    return schema


def with_documented_refusals(app) -> None:
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document_refusals(generate())
        return app.openapi_schema

    app.openapi = openapi
