"""What the send handlers touch, wired in app.py."""
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .prepare import Tracking


@dataclass
class SendDeps:
    requests: object            # adapters.requests.RequestStore
    accounts: object            # adapters.accounts.AccountStore
    credentials: object         # adapters.accounts.Credentials
    stores: object              # templates, signatures, crm, replies
    pools: object               # service_layer.pools.Pools
    sent_folder: object         # adapters.sent_folder.SentFolder
    publish: Callable[[str, object, str], Awaitable[None]]   # (topic name, event, key)
    publish_many: Callable[[str, list[tuple[str, object]]], Awaitable[None]]   # (topic name, [(key, event)])
    topics: dict[str, str]      # "sent", "failed", "tracking" -> topic
    tracking: Tracking | None
    lease_s: float = 300.0
    max_attempts: int = 5
    backoff_s: float = 2.0
    crash_dir: str | None = None  # test seam for the crash test (see crash_point)
    pending_grace_s: float = 5.0
    system: object = None         # adapters.system_sender.SystemSender: the sender of purpose="system" mail  # a new request is the consumer's; the sweep takes it only after this
