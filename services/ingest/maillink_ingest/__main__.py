from maillink_runtime.serve import serve

from .app import create_app
from .settings import IngestSettings

settings = IngestSettings()
serve(create_app(settings), settings.http_host, settings.http_port)
