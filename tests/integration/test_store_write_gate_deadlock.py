"""The write gate (runtime mongo.py) against the real store. Three bulk commands of 40 updates in
flight at once from one process deadlock FerretDB v1 on SQLite (the server stops answering; found
by hand with raw `bulk_write` calls). Through bulk_write_chunked / insert_new, which take one
process-wide gate per command, concurrent callers (e.g. several consumers of one service)
complete and every write lands.

The server is a private FerretDB v1 on SQLite on its own port and data directory, started for this
module: without the gate the deadlock would hang it, and it must not be the shared one."""
import asyncio
import socket
import subprocess
import time

import pymongo
import pytest
from pymongo import UpdateOne

from maillink_devtools.bench_matcher import ferret_binary
from maillink_runtime import mongo

pytestmark = pytest.mark.integration
WRITERS, UPDATES = 3, 200   # each caller sends 5 commands of 40 (mongo.BULK_CHUNK)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def private_store(tmp_path_factory):
    data, port = tmp_path_factory.mktemp("ferretdb-sqlite"), _free_port()
    log = open(data / "ferretdb.log", "ab")
    proc = subprocess.Popen([str(ferret_binary()), "-listen", f"127.0.0.1:{port}", "-data", str(data)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"mongodb://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                pymongo.MongoClient(url, serverSelectionTimeoutMS=1000).admin.command("ping")
                break
            except pymongo.errors.PyMongoError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield url
    finally:
        proc.kill()
        proc.wait(15)
        log.close()


async def test_concurrent_bulk_writes_of_one_process_complete(private_store):
    client = mongo.connect(private_store)
    db = client["gate"]
    try:
        collections = [db[f"c{w}"] for w in range(WRITERS)]
        for c in collections:   # updates of existing documents: what the deadlock needs
            await mongo.insert_new(c, [{"_id": i, "v": -1} for i in range(UPDATES)])

        async def writer(c, round_):
            await mongo.bulk_write_chunked(c, [UpdateOne({"_id": i}, {"$set": {"v": round_}}) for i in range(UPDATES)])

        async def inserter():
            return await mongo.insert_new(db["inserted"], [{"_id": i} for i in range(2500)])

        # The wait_for only turns a hang of the server into a failure (no timing is measured).
        results = await asyncio.wait_for(asyncio.gather(
            *(writer(c, r) for r in range(3) for c in collections), inserter(),
            mongo.bulk_write_chunked(mongo.gated(db)["c0"], [UpdateOne({"_id": 0}, {"$set": {"w": 1}})])), 120)
        assert results[-2] == []
        for c in collections:
            values = [d["v"] async for d in c.find({}, {"v": 1})]
            assert len(values) == UPDATES and set(values) <= {0, 1, 2}, values   # every update landed
        assert await db["inserted"].count_documents({}) == 2500
        assert (await db["c0"].find_one({"_id": 0}))["w"] == 1
    finally:
        await client.close()
