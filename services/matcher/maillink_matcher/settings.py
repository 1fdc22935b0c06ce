"""matcher's configuration (environment variables; see the README for the full list)."""
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maillink_runtime.settings import ServiceSettings
from maillink_schemas.mail import Visibility


class MatcherSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MATCHER_", extra="ignore")

    http_port: int = 8102
    default_visibility: Visibility = Field(Visibility.SHARED, description="Visibility of new messages of users "
                                           "who have not chosen one.")
    blob_urls: dict[str, str] = Field({"ingest": "http://127.0.0.1:8101"},
                                      description="Base URL of each service that serves raw MIME (by blob owner), "
                                      "for the signed links in the query API.")
    batch_size: int = Field(500, ge=1, le=5000, description="Records per consumed batch (mail and facts).")
    link_ttl_s: int = Field(300, ge=10, le=3600, description="Lifetime of a signed raw-MIME link.")
