"""Retained events read back (relay/store/history.py): every partition, oldest first, from a time."""

from __future__ import annotations

from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.history import History
from relay.store.streams import id_tuple


async def fill(redis: RedisClient, keys: Keys, ids: dict[int, list[str]]) -> None:
    for partition, entry_ids in ids.items():
        for entry_id in entry_ids:
            await redis.xadd(keys.events(partition), {"n": entry_id}, id=entry_id)


async def read(history: History, since: int) -> list[bytes]:
    return [entry_id async for entry_id, _ in history.since(since)]


async def test_every_partition_merged_oldest_first(redis: RedisClient, prefix: str) -> None:
    """Entries of all partitions come in id order, across batch boundaries, each once."""
    keys = Keys(prefix, 3)
    ids = {0: ["5-0", "9-0", "9-2", "30-0"], 1: ["1-0", "9-1", "10-0"], 2: ["2-0", "3-0", "4-0", "31-0"]}
    await fill(redis, keys, ids)
    found = await read(History(redis, keys, batch=2), 0)
    expected = sorted((i for p in ids.values() for i in p), key=id_tuple)
    assert [f.decode() for f in found] == expected


async def test_since_is_inclusive_by_millisecond(redis: RedisClient, prefix: str) -> None:
    """Only entries appended at or after ``since`` ms are read; no stream at all reads nothing."""
    keys = Keys(prefix, 2)
    assert await read(History(redis, keys), 0) == []
    await fill(redis, keys, {0: ["5-0", "9-0", "9-1"], 1: ["8-5", "12-0"]})
    assert [f.decode() for f in await read(History(redis, keys, batch=1), 9)] == ["9-0", "9-1", "12-0"]


async def test_reading_changes_nothing(redis: RedisClient, prefix: str) -> None:
    """The streams, the group and its pending entries are as they were after a read."""
    keys = Keys(prefix, 1)
    await fill(redis, keys, {0: ["1-0", "2-0"]})
    await redis.xgroup_create(keys.events(0), "g", id="0")
    await redis.xreadgroup("g", "c", {keys.events(0): ">"}, count=1)
    before = (await redis.xinfo_groups(keys.events(0)), await redis.xlen(keys.events(0)))
    assert len(await read(History(redis, keys), 0)) == 2
    assert (await redis.xinfo_groups(keys.events(0)), await redis.xlen(keys.events(0))) == before
