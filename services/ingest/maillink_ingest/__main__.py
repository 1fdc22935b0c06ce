import sys

from maillink_runtime.serve import serve

from .app import create_app
from .settings import IngestSettings

# aioimaplib 2.0.3 parses each network chunk recursively, one stack frame per response line; a
# chunk of many short lines (small messages, flag listings) can pass the default limit of 1000.
sys.setrecursionlimit(20_000)

settings = IngestSettings()
serve(create_app(settings), settings.http_host, settings.http_port)
