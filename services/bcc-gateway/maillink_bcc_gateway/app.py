"""Wires bcc-gateway together."""
from fastapi import FastAPI

from maillink_runtime.service import Service

from .settings import Settings


def create_app(settings: Settings) -> FastAPI:
    return Service("bcc-gateway", settings).app()
