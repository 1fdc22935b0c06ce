"""ingest's configuration (environment variables; see the README for the full list)."""
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maillink_runtime.blobs import BlobSettings
from maillink_runtime.settings import ServiceSettings, shared


class IngestSettings(ServiceSettings, BlobSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    http_port: int = 8101
    credentials_key: str = shared(..., "MAILLINK_CREDENTIALS_KEY",
                                  "Fernet keys that encrypt mailbox credentials at rest (required): one, or several "
                                  "comma-separated, newest first; the first encrypts, all decrypt (key rotation).")
    poll_interval_s: float = Field(15.0, description="Time between full passes (folders re-listed, unwatched "
                                   "folders checked); watched folders are synced as soon as IDLE reports a change.")
    relist_interval_s: float | None = Field(None, description="Time between full passes when IDLE watches every "
                                            "synced folder (default: poll_interval_s). Raise it (e.g. 300) for many "
                                            "idle accounts: IDLE already reports every change of a watched folder, "
                                            "and such a pass only re-lists folders and checks stored state.")
    full_passes_max: int = Field(20, ge=1, description="Full passes (connect, list, sync every folder) run at once "
                                 "in this process; the other accounts queue. Bounds the start-up storm when many "
                                 "accounts are assigned at once (1,000 starting together starved the event loop "
                                 "until the broker dropped the consumer). Pushes and IDLE are not limited.")
    connects_max: int = Field(20, ge=1, description="IMAP connections (TCP, TLS, LOGIN) being opened at once in "
                              "this process, sync sessions and IDLE watchers alike; the others queue. 1,000 "
                              "accounts assigned together open 3,000 connections: all at once they time out "
                              "against each other and the server's login processes.")
    idle_folders_max: int = Field(5, ge=0, le=100, description="IDLE connections per account (one per watched "
                                  "folder, INBOX first); the other folders are polled. Providers cap connections "
                                  "per mailbox (Gmail 15, Microsoft 365 about 20, Dovecot's default 10 per user and "
                                  "IP), and the user's other mail apps count too.")
    batch_size: int = Field(1000, ge=1, le=5000, description="UIDs per size query (UID FETCH RFC822.SIZE); the "
                            "messages of each are then fetched in groups of INGEST_FETCH_GROUP_BYTES.")
    fetch_group_bytes: int = Field(4 * 1024 * 1024, ge=64 * 1024, description="Bytes of messages per UID FETCH "
                                   "(by RFC822.SIZE; a larger message goes alone). At most two groups per account "
                                   "are in memory: one being fetched, one being stored and published.")
    imap_ca_file: str | None = Field(None, description="Extra CA certificate (PEM) to trust, e.g. a private test server's.")
    reconcile_interval_s: float = Field(21600.0, gt=0, description="Time between a folder's reconciliation audits "
                                        "(server UIDs vs delivered, delivered vs blobs); `POST /accounts/{id}/"
                                        "reconcile` asks for one at once.")
    use_qresync: bool = Field(True, description="Use QRESYNC/CONDSTORE where the server offers it; false forces the "
                              "plain fallback (UID SEARCH diff plus FLAGS), e.g. for a server whose QRESYNC is "
                              "broken.")
