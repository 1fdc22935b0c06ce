"""One SMTP connection pool per account (and account version: changed settings get a new pool)."""
from maillink_schemas.accounts import AccountConfigured
from maillink_schemas.providers import AuthMethod, Endpoint, ProviderPreset

from ..adapters.smtp import AccountPool, SmtpFailure


class Pools:
    def __init__(self, ca_file: str | None, timeout: float) -> None:
        self._ca_file, self._timeout = ca_file, timeout
        self._pools: dict[str, tuple[int, AccountPool]] = {}

    def for_account(self, account: AccountConfigured, preset: ProviderPreset, secret: str) -> AccountPool:
        known = self._pools.get(account.account_id)
        if known and known[0] == account.version:
            return known[1]
        endpoint = (Endpoint(host=account.smtp.host, port=account.smtp.port, security=account.smtp.security)
                    if account.smtp else preset.smtp)
        if endpoint is None:
            raise SmtpFailure("The account has no SMTP server configured.", permanent=True)
        pool = AccountPool(endpoint, account.username, secret, preset.auth[0] if preset.auth else AuthMethod.PASSWORD,
                           preset.limits, self._ca_file, self._timeout)
        self._pools[account.account_id] = (account.version, pool)
        return pool

    async def close(self) -> None:
        for _, pool in self._pools.values():
            await pool.close()
        self._pools.clear()
