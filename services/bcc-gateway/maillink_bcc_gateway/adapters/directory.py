"""The in-memory sender directory the SMTP session consults: address -> owner, token -> company.

SMTP checks run per command, so they read memory, not the store. The directory is rebuilt from
the store (users projection + alternative addresses) at start, after every address change this
instance makes, and every `refresh_s` seconds, so a change made through another instance is seen
within that interval. A crm.users.v1 record is applied at once in memory (`apply_user`, O(1): a
replay of the whole topic must not rebuild the directory once per user); the next rebuild is the
truth. Precedence when one address appears twice: a login address beats a verified alternative,
which beats a pending one.
"""
import asyncio
import contextlib

import structlog

from ..domain.recipients import company_token
from ..domain.senders import Owner, Standing
from .addresses import VERIFIED, AddressStore
from .users import UserStore

log = structlog.get_logger()
_RANK = {Standing.LOGIN: 0, Standing.VERIFIED: 1, Standing.PENDING: 2}


class Directory:
    def __init__(self, users: UserStore, addresses: AddressStore, refresh_s: float = 5.0) -> None:
        self._users, self._addresses, self._refresh_s = users, addresses, refresh_s
        self._owners: dict[str, Owner] = {}
        self._companies: dict[str, str] = {}
        self._own: dict[str, tuple[str, ...]] = {}
        self._login_of: dict[str, str] = {}
        self._task: asyncio.Task | None = None

    def owner(self, address: str) -> Owner | None:
        return self._owners.get(address.strip().lower())

    def company_of(self, token: str) -> str | None:
        return self._companies.get(token)

    def own_addresses(self, user_id: str) -> tuple[str, ...]:
        return self._own.get(user_id, ())

    async def reload(self) -> None:
        users, addresses = await self._users.all(), await self._addresses.live()
        owners: dict[str, Owner] = {}
        companies: dict[str, str] = {}
        own: dict[str, list[str]] = {}
        candidates = [(u["login_email"], Owner(u["_id"], u.get("company_id"), Standing.LOGIN)) for u in users
                      if u.get("login_email")]
        # An alternative address belongs to its user's current company (users move between companies
        # rarely, but the projection is the truth); the company stored with the address is a fallback.
        company = {u["_id"]: u.get("company_id") for u in users}
        candidates += [(a["address"], Owner(a["user_id"], company.get(a["user_id"]) or a.get("company_id"),
                                            Standing.VERIFIED if a["status"] == VERIFIED else Standing.PENDING))
                       for a in addresses]
        for address, owner in candidates:
            current = owners.get(address)
            if current is None or _RANK[owner.standing] < _RANK[current.standing]:
                owners[address] = owner
            if owner.may_send:
                own.setdefault(owner.user_id, []).append(address)
        for user in users:
            if user.get("company_id"):
                token = company_token(user["company_id"])
                if companies.setdefault(token, user["company_id"]) != user["company_id"]:
                    log.error("bcc_token_collision", token=token)
        self._owners, self._companies = owners, companies
        self._own = {user: tuple(sorted(set(addrs))) for user, addrs in own.items()}
        self._login_of = {u["_id"]: u["login_email"] for u in users if u.get("login_email")}

    def apply_user(self, user: dict) -> None:
        """One user's projection record (as UserStore stores it), applied in memory."""
        user_id, login, company = user["_id"], user.get("login_email"), user.get("company_id")
        old = self._login_of.pop(user_id, None)
        if old and (owner := self._owners.get(old)) and owner.user_id == user_id:
            del self._owners[old]
        own = [a for a in self._own.pop(user_id, ()) if a != old]
        if user.get("deleted"):
            for address in own:
                if (owner := self._owners.get(address)) and owner.user_id == user_id:
                    del self._owners[address]
            return
        for address in own:  # the user's verified alternatives follow the user's company
            self._owners[address] = Owner(user_id, company, Standing.VERIFIED)
        if login:
            self._owners[login] = Owner(user_id, company, Standing.LOGIN)
            self._login_of[user_id] = login
            own.append(login)
        self._own[user_id] = tuple(sorted(set(own)))
        if company:
            self._companies.setdefault(company_token(company), company)

    async def start(self) -> None:
        await self.reload()
        self._task = asyncio.create_task(self._refresh_forever())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.reload()
            except Exception as exc:  # noqa: BLE001 - keep serving the last good directory
                log.warning("directory_reload_failed", error=repr(exc))
