from maillink_runtime.serve import serve

from .app import create_app
from .settings import Settings

settings = Settings()
# uvloop: the SMTP server's protocol work (aiosmtpd's reading, parsing and socket writes) was the
# largest share of the gateway's CPU per message (py-spy, make bench-bcc; docs/bcc-gateway.md).
# HTTP is not a hot path here and keeps h11.
serve(create_app(settings), settings.http_host, settings.http_port, loop="uvloop")
