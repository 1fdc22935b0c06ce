"""The HTTP side every service has: /healthz (Kafka and store connectivity) and /metrics."""
import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

Check = Callable[[], Awaitable[object]]


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
