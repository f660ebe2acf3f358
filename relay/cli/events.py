"""``relay events tail``: the newest events on the streams; with ``-f``, every later one, followed
by stream id (``Follower``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, cast

import orjson

from relay.cli.common import load_settings, run_async, running_redis, whole_number
from relay.events import StreamEvent
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import RedisClient

FOLLOW_BATCH = 500
"""Most entries one follow read takes from each stream: what bounds its memory."""

Entry = tuple[bytes, dict[bytes, bytes]]


def _id_key(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


class Follower:
    """The streams' entries in id order, by stream id: per stream, the id of the last entry
    returned; each read takes the entries after it (XRANGE, exclusive). Nothing between two reads
    is skipped, however many came, and the state is one id per stream."""

    def __init__(self, redis: RedisClient, streams: list[str], batch: int = FOLLOW_BATCH) -> None:
        self.redis = redis
        self.batch = batch
        self.after: dict[str, bytes] = dict.fromkeys(streams, b"0-0")
        """Per stream, the id of the last entry returned (or seen by ``newest``)."""

    async def newest(self, count: int) -> list[Entry]:
        """The ``count`` newest entries over every stream, oldest first; following goes on after
        each stream's newest."""
        found: list[Entry] = []
        for stream in self.after:
            entries = cast(list[Entry], await self.redis.xrevrange(stream, count=count) or [])
            if entries:
                self.after[stream] = entries[0][0]
            found.extend(entries)
        found.sort(key=lambda item: _id_key(item[0]))
        return found[-count:]

    async def next(self) -> tuple[list[Entry], bool]:
        """The entries added after those returned so far, oldest first, up to ``batch`` per stream;
        and whether more are waiting (read again at once). A stream that filled its batch may hold
        more entries older than another stream's last: entries past the oldest such end wait for
        the next read, so the order holds across streams."""
        pipe = self.redis.pipeline(transaction=False)
        for stream, after in self.after.items():
            pipe.xrange(stream, min="(" + after.decode(), count=self.batch)
        read = dict(zip(self.after, cast(list[list[Entry]], await pipe.execute()), strict=True))
        full = [_id_key(entries[-1][0]) for entries in read.values() if len(entries) >= self.batch]
        bound = min(full) if full else None
        out: list[Entry] = []
        for stream, entries in read.items():
            taken = [e for e in entries if bound is None or _id_key(e[0]) <= bound]
            if taken:
                self.after[stream] = taken[-1][0]
            out.extend(taken)
        out.sort(key=lambda item: _id_key(item[0]))
        return out, bool(full)


def parsed(entry: Entry) -> StreamEvent | None:
    """The entry's event, or None for an entry that holds none (poison)."""
    try:
        return StreamEvent.from_fields(entry[1])
    except (KeyError, ValueError):
        return None


def render(entry_id: bytes, event: StreamEvent | None) -> str:
    if event is None:
        return orjson.dumps({"id": entry_id.decode(), "poison": True}).decode()
    record: dict[str, Any] = {
        "id": entry_id.decode(),
        "resource": event.resource,
        "event": event.event,
        "cfWebhookId": event.cf_webhook_id,
        "receivedAt": event.received_at,
        "event_json": event.json.decode(errors="replace"),
    }
    return orjson.dumps(record).decode()


async def _tail(settings: Settings, count: int, follow: bool, every: float = 0.5) -> int:
    keys = Keys(settings.key_prefix, settings.partitions)
    async with running_redis(settings) as redis:
        follower = Follower(redis, keys.all_events())
        for entry in await follower.newest(count):
            print(render(entry[0], parsed(entry)), flush=True)
        while follow:
            entries, more = await follower.next()
            for entry in entries:
                print(render(entry[0], parsed(entry)), flush=True)
            if not more:
                await asyncio.sleep(every)
        return 0


def _tail_cmd(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        return run_async(lambda: _tail(settings, args.count, args.follow))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 0


def register(sub: Any) -> None:
    events = sub.add_parser("events", help="inspect the event streams")
    events_sub = events.add_subparsers(dest="events_command", required=True, metavar="COMMAND")
    tail = events_sub.add_parser(
        "tail",
        help="print the newest events, one JSON line each",
        description="Print the newest events on the streams, oldest first, one JSON line each.",
    )
    tail.add_argument("-n", "--count", type=whole_number(1), default=10, help="how many (default 10)")
    tail.add_argument(
        "-f", "--follow", action="store_true", help="then print every new event, in order, none skipped"
    )
    tail.set_defaults(handler=_tail_cmd)
