"""structlog as JSON lines on stderr; bind context per unit of work with structlog.contextvars.

Secrets are redacted from every line (see redact.py). Third-party loggers that can print protocol
traffic (aioimaplib prints whole IMAP exchanges at DEBUG) stay at INFO or above even when
LOG_LEVEL=DEBUG, unless named in MAILLINK_DEBUG_LOGGERS; even then the redaction applies.
"""
import logging
import os
import sys

import structlog

from . import redact

# Library loggers and the level they keep unless explicitly opened up.
_HELD = {"aioimaplib": logging.INFO, "aiokafka": logging.WARNING, "faststream": logging.WARNING,
         "uvicorn.access": logging.WARNING, "pymongo": logging.INFO, "httpx": logging.WARNING,
         "httpcore": logging.INFO}


def configure(service: str, level: str = "INFO") -> None:
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s")
    opened = {n.strip() for n in os.environ.get("MAILLINK_DEBUG_LOGGERS", "").split(",") if n.strip()}
    for name, floor in _HELD.items():
        if name not in opened:
            logging.getLogger(name).setLevel(max(floor, logging.getLevelName(level.upper())))
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, redact.RedactingFilter) for f in handler.filters):
            handler.addFilter(redact.RedactingFilter())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact.structlog_processor,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
