"""Each folder's stored sync state, so a restart resumes where it stopped."""
from dataclasses import asdict, dataclass

from pymongo.asynchronous.database import AsyncDatabase


@dataclass
class FolderState:
    account_id: str
    folder: str
    uidvalidity: int = 0
    # Highest UID already covered: initial sync covers UIDs <= top_uid, incremental everything above.
    top_uid: int = 0
    # Initial sync goes newest first; `initial_cursor` is the lowest UID done so far (0 = not begun).
    initial_cursor: int = 0
    initial_done: bool = False
    initial_total: int = 0
    synced: int = 0

    @property
    def key(self) -> str:
        return f"{self.account_id}\x1f{self.folder}"


class FolderStateStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._col = db["folder_state"]

    async def load(self, account_id: str, folder: str) -> FolderState | None:
        doc = await self._col.find_one({"_id": f"{account_id}\x1f{folder}"})
        if doc is None:
            return None
        doc.pop("_id")
        return FolderState(**doc)

    async def save(self, state: FolderState) -> None:
        await self._col.replace_one({"_id": state.key}, {"_id": state.key, **asdict(state)}, upsert=True)

    async def for_account(self, account_id: str) -> list[FolderState]:
        return [FolderState(**{k: v for k, v in d.items() if k != "_id"})
                async for d in self._col.find({"account_id": account_id})]

    async def delete_account(self, account_id: str) -> None:
        await self._col.delete_many({"account_id": account_id})

    async def ensure_indexes(self) -> None:
        await self._col.create_index("account_id")
