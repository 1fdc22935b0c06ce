"""SPF/DKIM/DMARC checks in worker processes.

Measured (make bench-bcc): run in threads, the pure-Python checks held the GIL against the event
loop, so every socket write of every SMTP session waited for a worker's switch interval, and the
gateway reached ~0.27 of the bare sink's rate. In processes the loop only ships the message and
gets five words back. Workers are spawned (not forked: the parent runs threads and sockets) and
warmed at start, so the first session does not pay for their imports and the public suffix list.
"""
import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ..domain.authentication import AuthResults
from .auth_checks import AuthChecker

_checker: AuthChecker | None = None


def _init(host: str | None, port: int, timeout_s: float) -> None:
    global _checker
    _checker = AuthChecker(host, port, timeout_s)


def _ready() -> bool:
    return _checker is not None


def _check(raw: bytes, ip: str, mail_from: str, helo: str, from_domain: str) -> AuthResults:
    return _checker.check_sync(raw, ip, mail_from, helo, from_domain)


class AuthPool:
    def __init__(self, host: str | None, port: int, timeout_s: float, workers: int = 2) -> None:
        self._initargs, self._workers = (host, port, timeout_s), workers
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init, initargs=self._initargs)

    async def start(self) -> None:
        self._pool = self._new_pool()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._pool, _ready) for _ in range(self._workers)))

    async def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def check(self, raw: bytes, ip: str, mail_from: str, helo: str, from_domain: str) -> AuthResults:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, _check, raw, ip, mail_from, helo, from_domain)
        except BrokenProcessPool:
            # A worker died (OOM, a crash in a library): replace the pool; this message is retried
            # by its sender after the 451 the caller answers.
            self._pool = self._new_pool()
            raise
