"""outbound's read cache: one read per key at a time, however many sends want it at once."""
import asyncio


from maillink_outbound.adapters.read_cache import ReadCache


async def test_concurrent_misses_of_one_key_read_it_once():
    cache, reads = ReadCache(ttl_s=5), []

    async def load():
        reads.append(1)
        await asyncio.sleep(0.01)
        return len(reads)

    assert await asyncio.gather(*(cache.get(("person", "p-1"), load) for _ in range(10))) == [1] * 10
    assert await cache.get(("person", "p-1"), load) == 1 and len(reads) == 1


async def test_a_failed_read_fails_every_waiter_and_is_not_kept():
    cache = ReadCache(ttl_s=5)

    async def broken():
        await asyncio.sleep(0.01)
        raise ConnectionError("store down")

    results = await asyncio.gather(*(cache.get(("deal", "d-1"), broken) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)

    async def fine():
        return {"title": "Renewal"}

    assert await cache.get(("deal", "d-1"), fine) == {"title": "Renewal"}


async def test_entries_expire():
    cache, n = ReadCache(ttl_s=0.05), iter(range(10))

    async def load():
        return next(n)

    assert await cache.get(("k",), load) == 0
    assert await cache.get(("k",), load) == 0
    await asyncio.sleep(0.06)
    assert await cache.get(("k",), load) == 1
