"""Tracker settings. The token keys are shared with outbound (which mints the tokens), so their
variables carry no service prefix; everything else is TRACKER_*."""
from datetime import timedelta
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from maillink_runtime.settings import ServiceSettings
from maillink_schemas.tracking_token import Keyring, parse_keys

DATA = Path(__file__).parent / "data"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TRACKER_", extra="ignore", hide_input_in_errors=True)

    http_port: int = 8103
    public_port: int | None = Field(
        None, description="Port of the lean public listener (entrypoints/public_server.py): /o/ and /c/ only, "
        "the port to expose to the internet; several processes may share it (SO_REUSEPORT). Unset: none "
        "(the internal port answers the public paths too).")
    public_host: str = Field("0.0.0.0", description="Address the public listener binds.")
    tracking_keys: SecretStr | None = Field(
        None, validation_alias=AliasChoices("MAILLINK_TRACKING_KEYS"),
        description="Token keys, `kid:YYYY-MM-DD:secret` comma-separated (kid 1-255, the date it starts "
        "signing, a secret of 16+ bytes). The newest active key signs; shared with outbound.")
    tracking_key_grace_days: int = Field(
        30, validation_alias=AliasChoices("MAILLINK_TRACKING_KEY_GRACE_DAYS"),
        description="How long a replaced key still verifies tokens after its successor started signing.")
    token_max_age_days: int = Field(400, description="Tokens older than this are refused like forged ones.")
    apple_ranges_file: Path = Field(
        DATA / "apple-egress-sample.csv",
        description="Apple's egress-ip-ranges.csv (Mail Privacy Protection); the shipped file is a small "
        "sample for tests. See docs/tracker.md for the refresh.")
    rewriter_networks_file: Path = Field(
        DATA / "link-rewriter-networks.txt",
        description="Networks of link-rewriting security gateways (one `CIDR name` per line).")
    click_after_delivery_s: float = Field(10, description="A click this soon after sending is a scanner's.")
    burst_s: float = Field(5, description="Every link clicked within this many seconds is a scanner.")
    head_window_s: float = Field(60, description="A GET this soon after a HEAD on the same token, from the same "
                                 "network, is the scanner that sent the HEAD.")
    aggregate: bool = Field(True, description="Run the stats aggregator (consumer of opened/clicked) in this "
                            "process; false runs the public edge only (the benchmark does).")
    publish_linger_ms: int = Field(2, description="How long a batch of events waits to fill before it is sent.")
    publish_wait_s: float = Field(2.0, description="How long a request waits for Kafka's ack before answering "
                                  "anyway; the event stays queued and is sent when the broker is back.")
    registration_cache: int = Field(50_000, description="Registrations kept in memory for the click path.")
    retention_days: int = Field(400, description="Recorded opens, clicks and HEAD signals older than this are "
                                "deleted (they hold only a /24 or /48 network and a user-agent family).")

    def keyring(self) -> Keyring:
        if self.tracking_keys is None:
            raise ValueError("MAILLINK_TRACKING_KEYS must be set (kid:YYYY-MM-DD:secret,…): the tracker verifies "
                             "the tokens outbound mints with these keys.")
        return parse_keys(self.tracking_keys.get_secret_value(), timedelta(days=self.tracking_key_grace_days))

    def secrets(self) -> list[str]:
        if self.tracking_keys is None:
            return []
        return [item.split(":", 2)[-1] for item in self.tracking_keys.get_secret_value().split(",") if item.strip()]
