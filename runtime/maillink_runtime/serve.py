"""Runs a service's ASGI app (FastAPI + FastStream broker in its lifespan) under uvicorn."""
import uvicorn
from fastapi import FastAPI


def serve(app: FastAPI, host: str, port: int, *, loop: str = "asyncio", http: str = "h11") -> None:
    # uvicorn handles SIGINT/SIGTERM and runs the lifespan shutdown, which stops the broker.
    # The stdlib loop and h11 unless a service asks otherwise: uvicorn's "auto" would switch every
    # service to uvloop/httptools as soon as one service's dependencies install them.
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, lifespan="on", loop=loop, http=http)
