"""``relay events tail``: the newest events on the streams."""

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


def _id_key(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


async def newest(redis: RedisClient, keys: Keys, count: int) -> list[tuple[bytes, StreamEvent | None]]:
    """The ``count`` newest entries over every partition, oldest first."""
    found: list[tuple[bytes, dict[bytes, bytes]]] = []
    for stream in keys.all_events():
        entries = await redis.xrevrange(stream, count=count)
        found.extend(cast(list[tuple[bytes, dict[bytes, bytes]]], entries or []))
    found.sort(key=lambda item: _id_key(item[0]))
    out: list[tuple[bytes, StreamEvent | None]] = []
    for entry_id, fields in found[-count:]:
        try:
            out.append((entry_id, StreamEvent.from_fields(fields)))
        except (KeyError, ValueError):
            out.append((entry_id, None))
    return out


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


async def _tail(settings: Settings, count: int, follow: bool) -> int:
    keys = Keys(settings.key_prefix, settings.partitions)
    async with running_redis(settings) as redis:
        seen: set[bytes] = set()
        while True:
            for entry_id, event in await newest(redis, keys, count):
                if entry_id not in seen:
                    seen.add(entry_id)
                    print(render(entry_id, event), flush=True)
            if not follow:
                return 0
            await asyncio.sleep(0.5)


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
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    tail.set_defaults(handler=_tail_cmd)
