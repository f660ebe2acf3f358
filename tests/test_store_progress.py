"""relay.store.progress: what the console's overview reads of the pipeline. Real Redis."""

from __future__ import annotations

import time
from typing import Any

from relay.keys import GROUP, Keys
from relay.store.progress import read_progress


async def test_nothing_yet_is_all_zero(redis: Any, keys: Keys) -> None:
    """No stream, no group, no retry: every figure is zero and there is no oldest entry."""
    progress = await read_progress(redis, keys)
    assert (progress.events_added, progress.unread, progress.pending) == (0, 0, 0)
    assert progress.oldest_unfinished_ms is None
    assert progress.retries_scheduled == 0


async def test_unread_and_pending_entries_give_the_lag(redis: Any, keys: Keys) -> None:
    """The oldest entry either unread or read and not acknowledged dates the lag."""
    stream = keys.events(0)
    await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    before = int(time.time() * 1000)
    first = await redis.xadd(stream, {"n": 1})
    await redis.xadd(stream, {"n": 2})
    await redis.xadd(keys.events(1), {"n": 3})
    await redis.xreadgroup(GROUP, "c1", {stream: ">"}, count=1)  # the first is now pending
    progress = await read_progress(redis, keys)
    assert progress.events_added == 3
    assert progress.pending == 1
    assert progress.unread == 1  # the second; partition 1 has no group yet
    assert progress.oldest_unfinished_ms == int(first.decode().split("-")[0])
    assert progress.oldest_unfinished_ms >= before - 5
    await redis.xack(stream, GROUP, first)
    progress = await read_progress(redis, keys)
    assert progress.pending == 0 and progress.unread == 1
    assert progress.oldest_unfinished_ms is not None and progress.oldest_unfinished_ms >= before - 5


async def test_scheduled_retries_are_the_backlog(redis: Any, keys: Keys) -> None:
    """Every member of every partition's scheduled set counts."""
    await redis.zadd(keys.scheduled(0), {"a": 1, "b": 2})
    await redis.zadd(keys.scheduled(1), {"c": 3})
    assert (await read_progress(redis, keys)).retries_scheduled == 3
