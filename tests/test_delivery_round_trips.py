"""Redis round trips: a circuit breaker's update travels in the round trip that carries the
attempt's record and acknowledges its entry, never in one of its own; an idle reader woken by an
event makes one read for it, not two."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from relay.settings import Settings
from relay.store.breakers import BREAKER
from relay.store.connect import HiredisPackingConnection, connect
from relay.store.scripts import COMPLETE
from tests.callbacks import call_event
from tests.delivery_harness import open_harness
from tests.sink import Reply

Make = Callable[..., Settings]
SENT: list[bytes] = []


class Recording(HiredisPackingConnection):
    """The relay's connection, keeping what each round trip sends (a pipeline is sent at once)."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        if isinstance(command, str):
            packed = command.encode()
        else:
            packed = command if isinstance(command, bytes) else b"".join(command)
        SENT.append(packed)
        await super().send_packed_command(command, check_health)


def trips(figure: Callable[[bytes], bool]) -> int:
    return sum(1 for sent in SENT if figure(sent))


def acks(sent: bytes) -> bool:
    """The round trip acknowledges entries: by the COMPLETE script (retries to schedule with the
    acknowledgement), or a plain XACK."""
    return COMPLETE.sha.encode() in sent or b"\r\nXACK\r\n" in sent


async def test_a_failed_attempt_updates_its_breaker_in_the_round_trip_that_acks_it(
    make_settings: Make,
) -> None:
    """Five failed attempts of one delivery (then a dead letter): five BREAKER calls, one per
    attempt, each in the round trip that acknowledges the attempt's entry: none of their own, and
    no call to check the breaker (it is known closed) before an attempt."""
    settings = {"breaker_failures": 100, "disable_after": 0, "retry_schedule": "0.05s,0.05s,0.05s,0.05s"}
    client = connect(make_settings().redis_url or "", connection_class=Recording)
    for script in (BREAKER, COMPLETE):  # loaded: no NOSCRIPT answer (and call sent again) counted
        await script.load(client)
    SENT.clear()
    try:
        async with open_harness(make_settings, client, **settings) as h:
            h.sink.always("/down", Reply(500))
            await h.webhook("/down")
            await h.publish(call_event())
            await h.start()
            await h.dead_letters(1, within=10)
            await h.settled()
    finally:
        await client.aclose()
    breaker = BREAKER.sha.encode()
    assert sum(sent.count(breaker) for sent in SENT) == 5
    assert trips(lambda sent: breaker in sent) == 5
    assert trips(lambda sent: breaker in sent and not acks(sent)) == 0


async def test_an_idle_reader_reads_each_event_that_wakes_it_in_one_round_trip(make_settings: Make) -> None:
    """Events arriving one at a time at an idle worker: each is taken by the blocking read that was
    waiting for it, and the reader blocks again at once; no non-blocking read after each one (which
    would find the streams empty: two round trips per event at a modest rate)."""
    client = connect(make_settings().redis_url or "", connection_class=Recording)
    events = 10
    try:
        async with open_harness(make_settings, client, partitions=1) as h:
            await h.webhook("/hook")
            await h.start()
            await asyncio.sleep(0.1)  # its first pass done: blocked, waiting
            SENT.clear()
            for n in range(events):
                await h.publish(call_event(call_id=9100 + n))
                await h.sink.wait_for(n + 1)
            await h.settled()
    finally:
        await client.aclose()
    blocking = trips(lambda sent: b"XREADGROUP" in sent and b"BLOCK" in sent)
    plain = trips(lambda sent: b"XREADGROUP" in sent and b"BLOCK" not in sent)
    assert blocking >= events
    assert plain <= 2  # a pass after a read that timed out (idle 0.5 s) may make one
