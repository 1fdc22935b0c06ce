from maillink_runtime.serve import serve

from .app import create_app, served_app
from .settings import Settings

settings = Settings()
# uvloop + httptools: the pixel is a hot path, and they roughly double what one process answers
# (measured with wrk, docs/tracker.md).
serve(served_app(create_app(settings)), settings.http_host, settings.http_port, loop="uvloop", http="httptools")
