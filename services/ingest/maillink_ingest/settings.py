"""ingest's configuration (environment variables; see the README for the full list)."""
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maillink_runtime.blobs import BlobSettings
from maillink_runtime.settings import ServiceSettings, shared


class IngestSettings(ServiceSettings, BlobSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    http_port: int = 8101
    credentials_key: str = shared(..., "MAILLINK_CREDENTIALS_KEY",
                                  "Fernet key that encrypts mailbox credentials at rest (required).")
    poll_interval_s: float = Field(15.0, description="Longest wait between sync passes; IDLE on INBOX ends it "
                                   "as soon as the server reports new mail.")
    batch_size: int = Field(200, ge=1, le=1000, description="Messages per UID FETCH.")
    imap_ca_file: str | None = Field(None, description="Extra CA certificate (PEM) to trust, e.g. a private test server's.")
