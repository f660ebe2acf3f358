"""The ingest write (relay/ingest/writer.py) against the private Redis: callbacks written together
share round trips and script calls, and each still gets its own answer and its own entries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from relay.events import StreamEvent, events_of
from relay.ingest.parsing import Callback, parse_callback
from relay.ingest.writer import CALLBACKS_PER_SCRIPT, IngestWriter
from relay.keys import Keys
from relay.settings import Settings
from relay.store.scripts import INGEST
from tests.callbacks import call_event, callback_body

RECEIVED_AT = 1_700_000_000_000


@pytest.fixture
async def writer(settings: Settings, redis: Any, keys: Keys) -> AsyncIterator[IngestWriter]:
    writer = IngestWriter(redis, keys, dedup_window=settings.dedup_window, timeout=5.0)
    await writer.start()
    yield writer
    await writer.stop()


def callback(events: int = 1) -> Callback:
    return parse_callback(callback_body(*(call_event() for _ in range(events))))


async def stored(redis: Any, keys: Keys) -> list[StreamEvent]:
    entries = [StreamEvent.from_fields(f) for s in keys.all_events() for _, f in await redis.xrange(s)]
    return sorted(entries, key=lambda e: (e.callback, e.index))


async def script_calls(redis: Any) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_callbacks_written_together_share_script_calls(
    writer: IngestWriter, redis: Any, keys: Keys
) -> None:
    """More callbacks than one script call writes, submitted in one go: every one is appended,
    in as few calls as CALLBACKS_PER_SCRIPT allows."""
    callbacks = [callback() for _ in range(2 * CALLBACKS_PER_SCRIPT + 5)]
    await INGEST.load(redis)  # else the first calls meet NOSCRIPT and are sent again
    calls_before = await script_calls(redis)
    results = await asyncio.gather(*(writer.submit(c, RECEIVED_AT) for c in callbacks))
    assert results == [1] * len(callbacks)
    assert await script_calls(redis) - calls_before == 3
    assert len(await stored(redis, keys)) == len(callbacks)


async def test_each_callback_in_a_call_gets_its_own_answer_and_entries(
    writer: IngestWriter, redis: Any, keys: Keys
) -> None:
    """In one call: callbacks of 1, 3 and 2 events, and a repeat of the second: the repeat gets 0
    and writes nothing; every entry holds its own callback's fields, field for field."""
    one, three, two = callback(1), callback(3), callback(2)
    results = await asyncio.gather(*(writer.submit(c, RECEIVED_AT) for c in (one, three, three, two)))
    assert results == [1, 3, 0, 2]
    expected = [e for c in (one, three, two) for e in events_of(c, RECEIVED_AT)]
    assert await stored(redis, keys) == sorted(expected, key=lambda e: (e.callback, e.index))


async def test_a_script_redis_forgot_is_loaded_again(writer: IngestWriter, redis: Any, keys: Keys) -> None:
    await redis.script_flush()
    results = await asyncio.gather(*(writer.submit(callback(), RECEIVED_AT) for _ in range(3)))
    assert results == [1, 1, 1]
    assert len(await stored(redis, keys)) == 3


async def test_a_failed_append_fails_its_call_and_loses_nothing(
    writer: IngestWriter, redis: Any, keys: Keys
) -> None:
    """Two callbacks in one call, the second's stream unwritable: both get the error (503 at the
    edge); the first is written and claimed, so its retry is a repeat; the second wrote nothing
    and left no claim, so its retry, once Redis is fixed, is written."""
    first = callback()
    second = callback()
    while keys.partition_of(second.digest) == keys.partition_of(first.digest):
        second = callback()
    broken = keys.events(keys.partition_of(second.digest))
    await redis.set(broken, "not a stream")
    results = await asyncio.gather(
        *(writer.submit(c, RECEIVED_AT) for c in (first, second)), return_exceptions=True
    )
    assert all(isinstance(r, Exception) and "WRONGTYPE" in str(r) for r in results)
    await redis.delete(broken)
    assert await stored(redis, keys) == events_of(first, RECEIVED_AT)
    assert [await writer.submit(c, RECEIVED_AT) for c in (first, second)] == [0, 1]
    assert len(await stored(redis, keys)) == 2
