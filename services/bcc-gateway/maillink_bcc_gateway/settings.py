from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maillink_runtime.blobs import BlobSettings
from maillink_runtime.settings import ServiceSettings


class Settings(ServiceSettings, BlobSettings):
    model_config = SettingsConfigDict(env_prefix="BCC_GATEWAY_", extra="ignore")

    http_port: int = 8105
    smtp_host: str = Field("127.0.0.1", description="Address the SMTP server listens on.")
    smtp_port: int = Field(2525, description="SMTP port (an MX in front forwards port 25 here).")
    hostname: str = Field("bcc.maillink.test", description="Name the server gives in its greeting and EHLO.")
    domain: str = Field("bcc.maillink.test", description="Domain of the Smart Bcc addresses (company-7f3a@<domain>).")
    max_message_bytes: int = Field(20 * 1024 * 1024, description="Larger messages are refused with 552.")
    dns_host: str | None = Field(None, description="Resolver for SPF/DKIM/DMARC lookups; the system's when unset.")
    dns_port: int = Field(53, description="Port of that resolver.")
    dns_timeout_s: float = Field(5.0, description="Time allowed for one DNS lookup.")
    check_authentication: bool = Field(True, description="Verify SPF, DKIM and DMARC (off only for a trusted relay "
                                       "that already did).")
    tls_cert_file: Path | None = Field(None, description="PEM certificate for STARTTLS; a self-signed one is made in "
                                       "tls_dir when unset (local profile only).")
    tls_key_file: Path | None = Field(None, description="PEM private key for STARTTLS.")
    tls_dir: Path = Field(Path(".run/bcc-gateway/tls"), description="Where the local self-signed certificate goes.")
    public_url: str = Field("http://127.0.0.1:8105", description="Base URL of this service as a browser reaches it "
                            "(the confirmation link points here).")
    link_ttl_s: int = Field(72 * 3600, description="Lifetime of an address confirmation link.")
    system_account_id: str = Field("system", description="Account outbound sends system mail (confirmations) from.")
    directory_refresh_s: float = Field(5.0, description="How often the in-memory sender directory is reloaded from "
                                       "the store (changes made through another instance appear within this).")
