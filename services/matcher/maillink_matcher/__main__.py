from maillink_runtime.serve import serve

from .app import create_app
from .settings import MatcherSettings

settings = MatcherSettings()
serve(create_app(settings), settings.http_host, settings.http_port)
