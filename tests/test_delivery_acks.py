"""relay.delivery.acks: acknowledgements and attempt logs written in batches, on a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from relay.delivery.acks import Completer, Completion
from relay.delivery.retry import DueTimes
from relay.events import StreamEvent
from relay.keys import GROUP, Keys
from relay.store.attempts import AttemptRecord, Attempts, matched_record
from relay.store.connect import RedisClient
from relay.store.streams import Entry, Streams
from tests.callbacks import bare_stream_event


def event(index: int) -> StreamEvent:
    return bare_stream_event(index=index, callback="cd" * 32)


def attempt(e: StreamEvent, n: int = 1) -> AttemptRecord:
    return AttemptRecord(
        at=n, delivery_id=e.delivery_id(7), attempt=n, outcome="retry", status=500, seconds=0.01,
        error=None, webhook_id=7, event_id=e.id,
    )  # fmt: skip


async def read_one(redis: RedisClient, streams: Streams, keys: Keys, e: StreamEvent) -> Entry:
    await redis.xadd(keys.events(0), e.to_fields())  # type: ignore[arg-type]
    entries, _, _ = await streams.take(0, "c1", 10, None)
    (entry,) = entries
    return entry


@pytest.fixture
async def parts(redis: RedisClient, keys: Keys) -> AsyncIterator[tuple[Completer, Streams, Attempts]]:
    streams = Streams(redis, keys)
    await streams.ensure_groups(0)
    attempts = Attempts(redis=redis, keys=keys, kept=2)
    completer = Completer(redis=redis, streams=streams, attempts=attempts, due=DueTimes())
    await completer.start()
    yield completer, streams, attempts
    await completer.stop(1.0)


async def outcomes(attempts: Attempts, e: StreamEvent) -> list[Any]:
    (log,) = await attempts.of_events([e.id])
    return [record["outcome"] for record in log]


async def test_matched_record_and_first_attempt_share_the_log_write(
    parts: tuple[Completer, Streams, Attempts], redis: RedisClient, keys: Keys
) -> None:
    """The matched record, held, reaches the event's log with its first attempt, oldest."""
    completer, streams, attempts = parts
    e = event(0)
    entry = await read_one(redis, streams, keys, e)
    completer.matched(e.id, matched_record(at=0, webhook_ids=[7], entry="0/1-0"))
    await completer.drained()
    assert await outcomes(attempts, e) == []
    completer.record(7, attempt(e))
    completer.complete(Completion(entry, event_id=e.id))
    await completer.drained()
    assert await outcomes(attempts, e) == ["retry", "matched"]
    assert (await redis.xpending(keys.events(0), GROUP))["pending"] == 0


async def test_acknowledgement_writes_a_held_matched_record(
    parts: tuple[Completer, Streams, Attempts], redis: RedisClient, keys: Keys
) -> None:
    """An entry acknowledged with no attempt (it matched nothing) still logs what it matched."""
    completer, streams, attempts = parts
    e = event(1)
    entry = await read_one(redis, streams, keys, e)
    completer.matched(e.id, matched_record(at=0, webhook_ids=[], entry="0/1-0"))
    completer.complete(Completion(entry, event_id=e.id))
    await completer.drained()
    (log,) = await attempts.of_events([e.id])
    assert [(r["outcome"], r["webhookIds"]) for r in log] == [("matched", [])]


async def test_event_log_past_kept_is_trimmed_by_the_next_flush(
    parts: tuple[Completer, Streams, Attempts],
) -> None:
    """A log pushed past ``kept`` is cut back to its newest ``kept`` records once drained."""
    completer, _, attempts = parts
    e = event(2)
    for n in (1, 2, 3):
        completer.record(7, attempt(e, n))
        await completer.drained()
    (log,) = await attempts.of_events([e.id])
    assert [record["attempt"] for record in log] == [3, 2]


async def test_stop_writes_the_matched_records_still_held(redis: RedisClient, keys: Keys) -> None:
    """A worker stopping with deliveries unfinished still logs what their events matched."""
    streams = Streams(redis, keys)
    attempts = Attempts(redis=redis, keys=keys, kept=5)
    completer = Completer(redis=redis, streams=streams, attempts=attempts, due=DueTimes())
    await completer.start()
    e = event(3)
    completer.matched(e.id, matched_record(at=0, webhook_ids=[7], entry="0/1-0"))
    await completer.stop(1.0)
    raws: Any = await redis.lrange(keys.outcomes(e.id), 0, -1)
    assert [orjson.loads(raw)["outcome"] for raw in raws] == ["matched"]
