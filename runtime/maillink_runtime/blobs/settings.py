"""Where raw MIME is stored: settings shared, unprefixed, by the services that receive mail (ingest,
bcc-gateway). S3 credentials are not here: obstore reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
and AWS_SESSION_TOKEN itself."""
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..settings import shared
from .location import default_blob_url


class BlobSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    run_dir: str = shared(".run", "MAILLINK_RUN_DIR", "Runtime data directory (relative: to the working directory).")
    blob_url: str | None = shared(None, "MAILLINK_BLOB_URL",
                                  "Object store for raw MIME: file:///dir or s3://bucket/prefix; "
                                  "default file://<MAILLINK_RUN_DIR>/blobs.")
    aws_endpoint_url: str | None = shared(None, "AWS_ENDPOINT_URL", "S3 endpoint, for S3-compatible servers.")
    aws_region: str | None = shared(None, "AWS_REGION", "S3 region.")
    aws_allow_http: bool = shared(False, "AWS_ALLOW_HTTP", "Plain HTTP to S3; honoured for a loopback endpoint only.")

    def blob_store_url(self) -> str:
        return self.blob_url or default_blob_url(self.run_dir)
