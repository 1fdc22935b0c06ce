import gc

from maillink_runtime.serve import serve

from .app import create_app
from .settings import Settings

settings = Settings()
app = create_app(settings)
# What is loaded at start (modules, schemas, the app) lives as long as the process: kept out of the
# collector's full passes, which otherwise walk it again and again while messages are built.
gc.freeze()
serve(app, settings.http_host, settings.http_port)
