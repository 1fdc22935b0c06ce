"""ingest's configuration (environment variables; see the README for the full list)."""
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maillink_runtime.settings import ServiceSettings, shared

from .adapters.blob_location import default_blob_url


class BlobSettings(ServiceSettings):
    """Where raw MIME is stored. Shared, unprefixed: the bcc-gateway stores the mail it receives with
    the same settings. S3 credentials are read by obstore itself (AWS_ACCESS_KEY_ID, ...)."""
    run_dir: str = shared(".run", "MAILLINK_RUN_DIR", "Runtime data directory (relative: to the working directory).")
    blob_url: str | None = shared(None, "MAILLINK_BLOB_URL",
                                  "Object store for raw MIME: file:///dir or s3://bucket/prefix; "
                                  "default file://<MAILLINK_RUN_DIR>/blobs.")
    aws_endpoint_url: str | None = shared(None, "AWS_ENDPOINT_URL", "S3 endpoint, for S3-compatible servers.")
    aws_region: str | None = shared(None, "AWS_REGION", "S3 region.")
    aws_allow_http: bool = shared(False, "AWS_ALLOW_HTTP", "Plain HTTP to S3; honoured for a loopback endpoint only.")

    def blob_store_url(self) -> str:
        return self.blob_url or default_blob_url(self.run_dir)


class IngestSettings(BlobSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    http_port: int = 8101
    credentials_key: str = shared(..., "MAILLINK_CREDENTIALS_KEY",
                                  "Fernet key that encrypts mailbox credentials at rest (required).")
    poll_interval_s: float = Field(15.0, description="Longest wait between sync passes; IDLE on INBOX ends it "
                                   "as soon as the server reports new mail.")
    batch_size: int = Field(200, ge=1, le=1000, description="Messages per UID FETCH.")
    imap_ca_file: str | None = Field(None, description="Extra CA certificate (PEM) to trust, e.g. a private test server's.")
