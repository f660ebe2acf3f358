"""Redis round trips: a circuit breaker's update travels in the round trip that carries the
attempt's record and acknowledges its entry, never in one of its own; an idle reader woken by an
event makes one read for it, not two; a reader's non-blocking reads ask for twice what the last
one found, so a read at a modest rate holds few of the process's slots."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable

from relay.delivery.worker import READ_BATCH, light
from relay.settings import Settings
from relay.store.breakers import BREAKER
from relay.store.connect import HiredisPackingConnection, connect
from relay.store.scripts import COMPLETE, TAKE
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


def commands(sent: bytes) -> list[list[bytes]]:
    """The commands of one round trip, each its arguments (RESP arrays of bulk strings)."""
    out: list[list[bytes]] = []
    at = 0
    while at < len(sent):
        end = sent.index(b"\r\n", at)
        count, at = int(sent[at + 1 : end]), end + 2
        args: list[bytes] = []
        for _ in range(count):
            end = sent.index(b"\r\n", at)
            size = int(sent[at + 1 : end])
            args.append(sent[end + 2 : end + 2 + size])
            at = end + 2 + size + 2
        out.append(args)
    return out


def read_counts() -> list[int]:
    """The COUNT of each non-blocking read sent, in order: the TAKE script's (its third argument)
    or a plain XREADGROUP's."""
    counts: list[int] = []
    for sent in SENT:
        for args in commands(sent):
            name = args[0].upper()
            if name == b"EVALSHA" and args[1] == TAKE.sha.encode():
                counts.append(int(args[3 + int(args[2]) + 2]))  # ARGV: group, consumer, count, ...
            elif name == b"XREADGROUP" and b"BLOCK" not in (a.upper() for a in args):
                counts.append(int(args[[a.upper() for a in args].index(b"COUNT") + 1]))
    return counts


async def test_a_reader_asks_for_twice_what_its_last_read_found(make_settings: Make) -> None:
    """A backlog of 100 events at a worker bound to 64 in flight: the first non-blocking read asks
    for a few entries (``light``), each next one for twice what the last found, up to the room;
    never for all the room at once after a read that found few (which held every slot of the
    process for its round trip: the other partitions' readers could not read meanwhile)."""
    client = connect(make_settings().redis_url or "", connection_class=Recording)
    events = 100
    try:
        async with open_harness(make_settings, client, partitions=1, max_in_flight=64) as h:
            await h.webhook("/hook")
            for n in range(events):
                await h.publish(call_event(call_id=9300 + n))
            SENT.clear()
            await h.start()
            await h.sink.wait_for(events, within=30)
            await h.settled()
    finally:
        await client.aclose()
    counts = read_counts()
    least = light(64)
    assert counts[0] == least == 4
    assert max(counts) > least  # a backlog still gets bigger reads
    assert all(count <= READ_BATCH for count in counts)
    for before, after in itertools.pairwise(counts):
        assert after <= max(least, 2 * before)  # found at most what it asked for
