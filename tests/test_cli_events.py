"""`relay events tail`: the newest events, then (-f) every later one, followed by stream id."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest

from relay.cli.events import Follower, _tail
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import RedisClient


async def add(redis: RedisClient, keys: Keys, count: int) -> list[bytes]:
    """``count`` entries spread over the partitions' events streams; their ids in order."""
    ids = [await redis.xadd(keys.events(n % keys.partitions), {"n": str(n)}) for n in range(count)]
    return sorted(ids, key=lambda i: tuple(int(p) for p in i.split(b"-")))


async def follow_all(follower: Follower) -> list[bytes]:
    """Every entry ``next`` gives until nothing more is waiting."""
    out: list[bytes] = []
    while True:
        entries, more = await follower.next()
        out.extend(entry_id for entry_id, _ in entries)
        if not more:
            return out


async def test_newest_then_a_burst_larger_than_a_read_skips_nothing(redis: RedisClient, keys: Keys) -> None:
    """After the newest 3, a burst of 5 reads' worth over every partition comes whole, in order,
    each entry once; what the follower keeps is one id per stream."""
    old = await add(redis, keys, 7)
    follower = Follower(redis, keys.all_events(), batch=10)
    assert [entry_id for entry_id, _ in await follower.newest(3)] == old[-3:]
    burst = await add(redis, keys, 50 * keys.partitions)
    assert await follow_all(follower) == burst
    assert await follow_all(follower) == []
    assert len(follower.after) == keys.partitions


async def test_a_stream_empty_at_the_start_is_followed_from_its_first_entry(
    redis: RedisClient, keys: Keys
) -> None:
    """No entry yet: the first ones added are all followed."""
    follower = Follower(redis, keys.all_events(), batch=2)
    assert await follower.newest(10) == []
    added = await add(redis, keys, 5)
    assert await follow_all(follower) == added


async def test_tail_follow_prints_every_entry_of_a_burst(
    make_settings: Callable[..., Settings], redis: RedisClient, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    """`relay events tail -n 2 -f`: the newest 2, then every entry added while it follows, one
    JSON line each, none twice, however many came between two polls."""
    old = await add(redis, keys, 4)
    task = asyncio.create_task(_tail(make_settings(), 2, True, every=0.01))
    try:
        printed: list[str] = []
        while len(printed) < 2:
            await asyncio.sleep(0.01)
            printed += capsys.readouterr().out.splitlines()
        burst = await add(redis, keys, 1200)  # over two reads' worth of one stream
        while len(printed) < 2 + len(burst) and not task.done():
            await asyncio.sleep(0.02)
            printed += capsys.readouterr().out.splitlines()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    ids = [orjson.loads(line)["id"].encode() for line in printed]
    assert ids == old[-2:] + burst
