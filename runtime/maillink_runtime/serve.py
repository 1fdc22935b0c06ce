"""Runs a service's ASGI app (FastAPI + FastStream broker in its lifespan) under uvicorn."""
import uvicorn
from fastapi import FastAPI


def serve(app: FastAPI, host: str, port: int) -> None:
    # uvicorn handles SIGINT/SIGTERM and runs the lifespan shutdown, which stops the broker.
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")
