"""The dead-letter stream: what a letter keeps, replay, scans by webhook."""

from __future__ import annotations

from relay.delivery.message import Delivery
from relay.events import StreamEvent
from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.dead_letters import DeadLetters, LetterQuery, letter_fields, parse_letter
from tests.callbacks import as_stored, legacy_fields


def event(n: int = 0) -> StreamEvent:
    return StreamEvent(
        resource="OutboundCall",
        event="Finished",
        event_key="finished",
        cf_webhook_id=1001,
        cf_webhook_name="cf",
        timestamp=5,
        received_at=6,
        callback=f"{n:064x}",
        index=0,
        json=b'{"resource":{"id":7420017300281076000}}',
    )


def exhausted(webhook_id: int = 7, n: int = 0) -> dict[str, object]:
    return letter_fields(
        kind="exhausted", reason="gave up after 3 attempts, last: HTTP 503", at=9,
        webhook_id=webhook_id, attempts=3, last_status=503, event=event(n),
    )  # fmt: skip


def test_letter_keeps_reason_attempts_status_and_event() -> None:
    """Everything a letter is written with reads back, the event's JSON exact."""
    letter = parse_letter(b"1-0", as_stored(exhausted()))
    assert (letter.kind, letter.webhook_id, letter.attempts, letter.last_status) == ("exhausted", 7, 3, 503)
    assert letter.event == event() and letter.replayable


def test_poison_letter_keeps_the_raw_fields_and_is_not_replayable() -> None:
    """A poison entry is kept as its raw fields, marked poison."""
    fields = letter_fields(kind="poison", reason="unreadable", at=1, raw={b"junk": b"\xff"})
    letter = parse_letter(b"2-0", as_stored(fields))
    assert letter.kind == "poison" and letter.event is None and not letter.replayable
    assert "junk" in letter.raw


async def test_replay_puts_a_first_attempt_back_and_drops_the_letter(redis: RedisClient, keys: Keys) -> None:
    """Replay appends attempt 1 to the event's partition's deliveries stream and removes the letter."""
    store = DeadLetters(redis, keys)
    letter_id = await store.add(exhausted())
    letter = await store.get(letter_id)
    assert letter is not None and await store.replay([letter]) == (1, [])
    partition = keys.partition_of(bytes.fromhex(event().callback))
    ((_, fields),) = await redis.xrange(keys.deliveries(partition))
    assert Delivery.from_fields(fields) == Delivery(7, 1, event())
    assert await store.count() == 0


async def test_scan_filters_by_webhook_across_pages(redis: RedisClient, keys: Keys) -> None:
    """Scanning one webhook's letters reads every page, newest first, and keeps only that webhook's."""
    store = DeadLetters(redis, keys)
    for n in range(5):
        await store.add(exhausted(webhook_id=7 if n % 2 == 0 else 8, n=n))
    found = [letter async for letter in store.scan(LetterQuery(webhook_id=7), batch=2)]
    assert [letter.event.callback for letter in found if letter.event] == [f"{n:064x}" for n in (4, 2, 0)]


async def test_a_letter_written_before_the_upgrade_reads_and_replays(redis: RedisClient, keys: Keys) -> None:
    """A letter holding the event in the old format (a field per value) shows its event and
    replays it as a delivery in the new format."""
    fields = {k: v for k, v in as_stored(exhausted()).items() if k not in (b"m", b"json")}
    letter_id = await redis.xadd(keys.dead_letters, {**fields, **legacy_fields(event())})  # type: ignore[arg-type]
    store = DeadLetters(redis, keys)
    letter = await store.get(letter_id.decode())
    assert letter is not None and letter.event == event() and letter.replayable
    assert await store.replay([letter]) == (1, [])
    ((_, replayed),) = await redis.xrange(keys.deliveries(keys.partition_of(bytes.fromhex(event().callback))))
    assert b"m" in replayed and b"resource" not in replayed
    assert Delivery.from_fields(replayed) == Delivery(7, 1, event())
