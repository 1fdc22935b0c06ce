"""outbound's configuration (environment variables, prefix OUTBOUND_; shared ones unprefixed)."""
from datetime import timedelta

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from maillink_runtime.settings import ServiceSettings, shared
from maillink_schemas.accounts import Security
from maillink_schemas.tracking_token import Keyring, parse_keys


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OUTBOUND_", extra="ignore")

    http_port: int = 8104
    credentials_key: str = shared(..., "MAILLINK_CREDENTIALS_KEY",
                                  "Fernet key the account credentials are encrypted with (the one ingest uses).")
    tracker_base_url: str = Field("http://127.0.0.1:8103", description="Public base URL of the tracker "
                                  "(pixel and click redirects point there).")
    tracking_keys: SecretStr | None = shared(
        None, "MAILLINK_TRACKING_KEYS", "Tracker token keys, `kid:YYYY-MM-DD:secret` comma-separated, the same "
        "value as the tracker's (docs/tracker.md); tracking is off while neither this nor tracking_secret is set.")
    tracking_key_grace_days: int = shared(30, "MAILLINK_TRACKING_KEY_GRACE_DAYS",
                                          "How long a replaced tracking key still verifies (as the tracker's).")
    tracking_secret: SecretStr | None = Field(None, description="Deprecated: one key, used as `1:2020-01-01:<secret>` "
                                              "when MAILLINK_TRACKING_KEYS is unset; give the tracker the same.")

    def tracking_keyring(self) -> Keyring | None:
        if self.tracking_keys is not None:
            spec = self.tracking_keys.get_secret_value()
        elif self.tracking_secret is not None:
            spec = f"1:2020-01-01:{self.tracking_secret.get_secret_value()}"
        else:
            return None
        return parse_keys(spec, timedelta(days=self.tracking_key_grace_days))
    smtp_ca_file: str | None = Field(None, description="Extra CA certificate (PEM) to trust for SMTP, e.g. a "
                                     "private test server's. Certificates are always verified.")
    imap_ca_file: str | None = Field(None, description="Extra CA certificate (PEM) to trust for IMAP.")
    smtp_timeout_s: float = Field(60.0, description="Timeout of each SMTP command.")
    lease_s: float = Field(300.0, description="How long a `sending` request belongs to its sender; after that "
                           "a crashed send is recovered (Sent folder lookup). Keep well above smtp_timeout_s.")
    batches: int = Field(8, ge=1, description="Batches of requests in progress at once (group commit: each "
                         "state change of a batch is one store command); the per-account pools limit SMTP further.")
    batch_size: int = Field(100, ge=1, description="Most requests in one batch, and most send commands read "
                            "from Kafka and stored per poll.")
    sweep_s: float = Field(1.0, description="How often due (scheduled, retrying, orphaned) requests are looked for.")
    settle_backlog: int = Field(20000, ge=0, description="Sent requests recorded as outcomes whose documents "
                                "are updated only when no batch runs, unless more than this many wait (then at once).")
    pending_grace_s: float = Field(5.0, description="A new request is sent by the process that consumed it; "
                                   "the sweep picks it up only after this long (e.g. after that process died).")
    cache_ttl_s: float = Field(5.0, description="How long accounts, templates, signatures and CRM records read "
                               "for sending are reused before being read again (0: always read).")
    max_attempts: int = Field(5, ge=1, description="Attempts after transient SMTP errors before a request fails.")
    backoff_s: float = Field(2.0, description="First retry delay; doubles with each attempt.")
    system_account_id: str = Field("system", description="The account id of mail maillink sends itself "
                                   "(`purpose=\"system\"`, e.g. Smart Bcc confirmations; bcc-gateway's "
                                   "BCC_GATEWAY_SYSTEM_ACCOUNT_ID). It is sent from the system sender below, never "
                                   "from a user's account, without tracking and without a `mail.message.sent.v1`.")
    system_from: str = Field("maillink@example.com", description="From address of system mail.")
    system_smtp_host: str = Field("127.0.0.1", description="SMTP server of system mail (default: the local "
                                  "test server, deploy/local/smtp_server.py).")
    system_smtp_port: int = Field(2525, ge=1, le=65535)
    system_smtp_security: Security = Field(Security.PLAIN, description="ssl, starttls or plain (plain only "
                                           "towards a loopback host).")
    system_smtp_username: str | None = Field(None, description="Login of the system sender; unset: no AUTH.")
    system_smtp_password: SecretStr | None = Field(None, description="Its password (never logged).")
    test_crash_dir: str | None = Field(None, description="Test seam of the crash test only (see send.crash_point).")
