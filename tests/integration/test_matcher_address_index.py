"""The address -> messages index (adapters/address_index.py) against the real store: the facts
consumer finds the messages a person's changed address affects by `_id` reads."""
import pytest

from maillink_matcher.adapters.address_index import AddressIndex
from maillink_runtime import mongo
from tests.conftest import MONGODB_URL

pytestmark = pytest.mark.integration


def message(key: str, account: str, *addresses: str, own: str = "me@mine.example") -> dict:
    return {"_id": key, "account_id": account, "addresses": sorted({*addresses, own}), "account_addresses": [own]}


@pytest.fixture
async def db(namespace):
    client = mongo.connect(MONGODB_URL)
    database = client[f"{namespace.strip('.')}_matcher"]
    yield database
    await client.drop_database(database.name)
    await client.close()


async def test_messages_are_found_by_each_participant_address_but_not_by_their_own_mailbox_address(db):
    index = AddressIndex(db)
    await index.write([message("k1", "a1", "jan@acme.example"), message("k2", "a2", "jan@acme.example", "eva@x.example")])
    await index.write([message(f"m{i}", "a1", "busy@x.example") for i in range(30)])
    assert await index.lookup(["jan@acme.example"]) == [("a1", "k1"), ("a2", "k2")]
    assert await index.lookup(["eva@x.example", "nobody@x.example"]) == [("a2", "k2")]
    assert len(await index.lookup(["busy@x.example"])) == 30
    assert await index.lookup(["me@mine.example"]) == []


async def test_a_chunk_written_by_another_process_is_added_to_not_replaced(db):
    first, second = AddressIndex(db), AddressIndex(db)
    await second.write([message("k9", "a2", "other@y.example")])   # `second` knows the chunks of now
    await first.write([message("k0", "a1", "x@y.example"), message("k1", "a1", "x@y.example")])
    # `second` believes x@y.example's chunks are new: its inserts meet the existing ones.
    await second.write([message("k1", "a1", "x@y.example"), message("k2", "a2", "x@y.example")])
    # Whichever chunk each key hashed to, both messages are found, each once.
    assert await AddressIndex(db).lookup(["x@y.example"]) == [("a1", "k0"), ("a1", "k1"), ("a2", "k2")]
    assert sorted(k for d in await db["address_keys"].find({}).to_list() for k in d["k"]) == [
        "a1 k0", "a1 k1", "a2 k2", "a2 k9"]   # each listed once


async def test_an_indexed_message_is_not_written_again_and_rebuild_derives_the_same_index(db):
    index = AddressIndex(db)
    doc = message("k1", "a1", "jan@acme.example")
    await index.write([doc])
    assert doc["indexed_addresses"] == ["jan@acme.example"]
    await db["messages"].insert_many([doc, message("k2", "a2", "eva@x.example")])
    assert await AddressIndex(db).rebuild(db["messages"]) == 2
    assert await index.lookup(["jan@acme.example", "eva@x.example"]) == [("a1", "k1"), ("a2", "k2")]
