"""Waiting for new mail between sync passes: IDLE (RFC 2177) where the server has it, a timer where not."""
import asyncio

import aioimaplib

from .connection import select


async def wait_for_change(client: aioimaplib.IMAP4, folder: str, stop: asyncio.Event, seconds: float) -> None:
    """Returns when the server reports a change in `folder`, after `seconds`, or when `stop` is set.

    IDLE watches one folder (the selected one); the others are seen at the next pass, at the
    latest after `seconds`. Any untagged push (EXISTS, EXPUNGE, FETCH, Dovecot's "OK Still here"
    keep-alive) ends the wait: a spurious wake-up costs one cheap pass, a missed one costs latency.
    """
    if not client.has_capability("IDLE"):
        await sleep_or_stop(stop, seconds)
        return
    await select(client, folder)
    idle = await client.idle_start(timeout=seconds)  # aioimaplib ends the push wait after `timeout`
    push = asyncio.ensure_future(client.wait_server_push(timeout=seconds + 5))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({push, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (push, stopped):
            task.cancel()
        await asyncio.gather(push, stopped, return_exceptions=True)
        client.idle_done()
        # The server answers DONE with the IDLE command's tagged OK; the next command must wait for it.
        await asyncio.wait_for(idle, 10)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleeps `seconds`, or less if `stop` is set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
