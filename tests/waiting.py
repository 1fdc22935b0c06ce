"""Waiting for something the services do asynchronously: one sync and one async poll loop for all tests.

Both return the last value read, whether or not `done` came true, so the caller's assertion shows what
was seen last instead of a bare timeout."""
import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 30, every: float = 0.3) -> T:
    """Calls `read()` until `done(value)` holds or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(every)


async def eventually(read: Callable[[], Awaitable[T] | T], done: Callable[[T], bool],
                     timeout: float = 30, every: float = 0.3) -> T:
    """The async `wait_for`: `read` may be a coroutine function or a plain one; the loop never blocks."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if inspect.isawaitable(value):
            value = await value
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(every)
