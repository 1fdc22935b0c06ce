"""Which account a request is sent from."""
from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.outbound import SendRequested

from ..adapters.system_sender import SYSTEM
from .deps import SendDeps


async def sender_account(cmd: SendRequested, deps: SendDeps) -> AccountConfigured | None:
    """The account a request is sent from: the system sender for purpose="system" (only under its
    account id), else outbound's projection of the user's account."""
    if cmd.purpose == SYSTEM:
        system = deps.system
        return system.account(cmd.user_id) if system is not None and cmd.account_id == system.account_id else None
    return await deps.stores.cache.get(("account", cmd.account_id), lambda: deps.accounts.get(cmd.account_id))
