"""Attempt logs: per webhook and per event, capped at RELAY_ATTEMPTS_KEPT, newest first."""

from __future__ import annotations

import orjson

from relay.keys import Keys
from relay.store.attempts import AttemptRecord, Attempts, attempt_record, matched_record
from relay.store.connect import RedisClient


def record(attempt: int, status: int | None = 503, answer: bytes = b"busy") -> AttemptRecord:
    return AttemptRecord(
        at=attempt, delivery_id="msg_x", attempt=attempt, outcome="retry", status=status, seconds=0.01,
        error=None, webhook_id=7, event_id="evt_x_0", retry_at=attempt + 5, answer=answer,
    )  # fmt: skip


def test_a_failed_attempt_keeps_the_first_kib_of_its_answer() -> None:
    """A non-2xx attempt's record keeps 1 KiB of its answer; a 2xx keeps none."""
    failed = orjson.loads(record(1, 500, b"e" * 5000).dumps())
    assert failed["answer"] == "e" * 1024 and failed["retryAt"] == 6 and failed["webhookId"] == 7
    assert orjson.loads(record(1, 200, b"ok").dumps())["answer"] is None


def test_matched_record_names_the_webhooks_and_the_entry() -> None:
    """The matched record says which webhooks the event matched, and where its entry is."""
    assert orjson.loads(matched_record(at=1, webhook_ids=[3, 4], entry="0/1-0")) == {
        "at": 1, "outcome": "matched", "webhookIds": [3, 4], "entry": "0/1-0",
    }  # fmt: skip


async def test_event_log_is_capped_newest_first_and_expires(redis: RedisClient, keys: Keys) -> None:
    """An event's log keeps the newest ``kept`` records, newest first, with the event TTL."""
    attempts = Attempts(redis=redis, keys=keys, kept=2, event_ttl_ms=60_000)
    pipe = redis.pipeline(transaction=False)
    attempts.queue_event(pipe, "evt_x_0", [record(n).dumps() for n in (1, 2, 3)])
    await pipe.execute()
    (log,) = await attempts.of_events(["evt_x_0"])
    assert [r["attempt"] for r in log] == [3, 2]
    assert 0 < await redis.pttl(keys.outcomes("evt_x_0")) <= 60_000


async def test_history_is_one_deliverys_records(redis: RedisClient, keys: Keys) -> None:
    """A delivery's history leaves out the event's other deliveries and its matched record."""
    attempts = Attempts(redis=redis, keys=keys, kept=10)
    other = attempt_record(
        at=1, delivery_id="msg_y", attempt=1, outcome="delivered", status=200, seconds=0.0, error=None
    )
    pipe = redis.pipeline(transaction=False)
    attempts.queue_event(pipe, "evt_x_0", [matched_record(at=0, webhook_ids=[7], entry="0/1-0")])
    attempts.queue_event(pipe, "evt_x_0", [record(1).dumps(), other, record(2).dumps()])
    await pipe.execute()
    history = [orjson.loads(raw) for raw in await attempts.history("evt_x_0", "msg_x")]
    assert [h["attempt"] for h in history] == [2, 1]
