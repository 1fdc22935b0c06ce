"""The IMAP commands sync-back needs: verify a UID, STORE, COPY, MOVE (or its UIDPLUS fallback), CREATE.

MOVE is RFC 6851. Without it, a move is COPY + STORE \\Deleted + UID EXPUNGE of that one UID
(UIDPLUS, RFC 4315): a plain EXPUNGE would also remove whatever else the user had marked
\\Deleted, so without UIDPLUS we refuse rather than expunge someone else's messages.
"""
import re

import aioimaplib

from maillink_runtime.imap.mailbox_names import mailbox_arg

from .connection import _ok, uid_search
from .errors import ProtocolError

_COPYUID = re.compile(rb"\[COPYUID (\d+) (\S+) (\S+)\]")


async def uid_exists(client: aioimaplib.IMAP4, uid: int) -> bool:
    # A single UID (not "n:*"), so the RFC 3501 highest-UID rule cannot add a false match.
    return uid in await uid_search(client, f"UID {uid}")


async def store(client: aioimaplib.IMAP4, uid: int, item: str) -> None:
    action, _, value = item.partition(" ")
    _ok(await client.uid("store", str(uid), action, value), "UID STORE")


async def copy(client: aioimaplib.IMAP4, uid: int, folder: str) -> tuple[int, int] | None:
    response = await client.uid("copy", str(uid), mailbox_arg(folder))
    _ok(response, "UID COPY")
    return copied_to(response)


async def move(client: aioimaplib.IMAP4, uid: int, folder: str, *, use_move: bool = True) -> tuple[int, int] | None:
    """Moves one message; returns (UIDVALIDITY, UID) in the target when the server says (COPYUID)."""
    caps = {c.upper() for c in client.protocol.capabilities}
    if use_move and "MOVE" in caps:
        response = await client.uid("move", str(uid), mailbox_arg(folder))
        _ok(response, "UID MOVE")
        return copied_to(response)
    if "UIDPLUS" not in caps:
        raise ProtocolError("The mail server supports neither MOVE nor UIDPLUS, so a message cannot be moved "
                            "without risking other messages marked deleted.")
    target = await copy(client, uid, folder)
    await store(client, uid, "+FLAGS.SILENT (\\Deleted)")
    _ok(await client.uid("expunge", str(uid)), "UID EXPUNGE")
    return target


async def create(client: aioimaplib.IMAP4, folder: str) -> None:
    response = await client.create(mailbox_arg(folder))
    # [ALREADYEXISTS] (RFC 5530): someone else created it meanwhile, which is just as good.
    if response.result != "OK" and b"ALREADYEXISTS" not in b" ".join(bytes(x) for x in response.lines):
        _ok(response, "CREATE")


def copied_to(response: aioimaplib.Response) -> tuple[int, int] | None:
    for line in response.lines:
        if isinstance(line, (bytes, bytearray)) and (m := _COPYUID.search(bytes(line))):
            new = m.group(3).split(b",")[0].split(b":")[0]  # one UID was copied: its new UID
            return int(m.group(1)), int(new)
    return None
