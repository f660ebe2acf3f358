"""The delivery tests' bench: a DeliveryService on the private Redis, webhooks, published events.

async with open_harness(make_settings, redis) as h:
    hook = await h.webhook("/a")
    await h.start()
    await h.publish(call_event())
    got = await h.sink.wait_for(1, "/a")
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import orjson
from pydantic import SecretStr
from redis.exceptions import ResponseError

from relay.app import keys_for
from relay.delivery import DeliveryService
from relay.events import StreamEvent, events_of
from relay.ingest.parsing import parse_callback
from relay.settings import Settings
from relay.store.connect import RedisClient
from relay.store.dead_letters import DeadLetter, DeadLetters, LetterQuery
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import Webhook, WebhookSpec
from tests.callbacks import call_event, callback_body
from tests.sink import Sink

HOOK_SECRET = "subscriber-secret"

FAST = {
    "retry_schedule": "0.1s,0.2s",
    "delivery_timeout": "2s",
    "reclaim_idle": "10s",
    "shutdown_grace": "1s",
    "max_per_host": 8,
    "max_in_flight": 64,
}


def now_ms() -> int:
    return int(time.time() * 1000)


class Harness:
    def __init__(self, settings: Settings, redis: RedisClient, sink: Sink) -> None:
        self.settings = settings
        self.redis = redis
        self.sink = sink
        self.keys = keys_for(settings)
        self.store = WebhookStore(redis, self.keys, secret_keys=settings.secret_keys)
        self.dead = DeadLetters(redis, self.keys)
        self.services: list[DeliveryService] = []

    async def webhook(self, path: str = "/hook", **fields: Any) -> Webhook:
        """A webhook on the sink's ``path``; every running service's view is made current."""
        hook = await self.webhook_unsynced(path, **fields)
        await self.sync()
        return hook

    async def webhook_unsynced(self, path: str = "/hook", **fields: Any) -> Webhook:
        """A webhook on the sink's ``path``, written as the API writes it, nothing more."""
        values: dict[str, Any] = {
            "resource": "OutboundCall",
            "events": ["Finished"],
            "callback": self.sink.url(path),
            "secret": SecretStr(HOOK_SECRET),
        }
        values.update(fields)
        return await self.store.create(WebhookSpec.model_validate(values), now_ms())

    async def sync(self) -> None:
        """Make every running service's webhook view current."""
        for service in self.services:
            if service.ready.is_set():
                await service.view.refresh()

    async def start(self, **kwargs: Any) -> DeliveryService:
        service = DeliveryService(self.settings, self.redis, self.keys, **kwargs)
        await service.start()
        self.services.append(service)
        await service.ready.wait()
        return service

    async def publish(self, *events: dict[str, Any]) -> list[StreamEvent]:
        """Append a callback's events to its partition's events stream, as the listener does."""
        callback = parse_callback(callback_body(*(events or (call_event(),))))
        partition = self.keys.partition_of(callback.digest)
        out = events_of(callback, now_ms())
        for event in out:
            await self.redis.xadd(self.keys.events(partition), event.to_fields())  # type: ignore[arg-type]
        return out

    async def attempts(self, webhook_id: int) -> list[dict[str, Any]]:
        """The webhook's attempt log, newest first, once every service has flushed it."""
        for service in self.services:
            await service.completer.drained()
        return [orjson.loads(r) for r in await self.redis.lrange(self.keys.attempts(webhook_id), 0, -1)]

    async def pending(self) -> int:
        """Entries read by the group and not yet acknowledged, over every stream."""
        total = 0
        for p in range(self.keys.partitions):
            for stream in (self.keys.events(p), self.keys.deliveries(p)):
                with suppress(ResponseError):  # no stream or group yet: nothing pending
                    total += int((await self.redis.xpending(stream, "relay-workers"))["pending"])
        return total

    async def unread(self) -> int:
        """Streams whose newest entry the group has not read yet."""
        count = 0
        for p in range(self.keys.partitions):
            for stream in (self.keys.events(p), self.keys.deliveries(p)):
                with suppress(ResponseError):  # no stream or group yet: nothing read
                    last = (await self.redis.xinfo_stream(stream))["last-generated-id"]
                    groups = await self.redis.xinfo_groups(stream)
                    count += int(not groups or groups[0]["last-delivered-id"] != last)
        return count

    async def scheduled(self, count: int, within: float = 5.0) -> None:
        """Wait until the scheduled sets hold ``count`` deliveries (a POST's answer is handled
        after the sink has seen the POST: a retry is scheduled a little later)."""
        deadline = time.monotonic() + within
        while True:
            held = 0
            for p in range(self.keys.partitions):
                held += await self.redis.zcard(self.keys.scheduled(p))
            if held == count:
                return
            assert time.monotonic() < deadline, f"{held} of {count} deliveries scheduled"
            await asyncio.sleep(0.02)

    async def settled(self, within: float = 5.0) -> None:
        """Wait until every entry is read and acknowledged and nothing is scheduled."""
        deadline = time.monotonic() + within
        while True:
            scheduled = 0
            for p in range(self.keys.partitions):
                scheduled += await self.redis.zcard(self.keys.scheduled(p))
            if scheduled == 0 and await self.unread() == 0 and await self.pending() == 0:
                for service in self.services:
                    await service.completer.drained()
                return
            assert time.monotonic() < deadline, "deliveries did not settle"
            await asyncio.sleep(0.02)

    async def dead_letters(self, count: int = 1, within: float = 5.0) -> list[DeadLetter]:
        deadline = time.monotonic() + within
        while True:
            _, letters = await self.dead.find(LetterQuery(), 0, 1000)
            letters.reverse()  # oldest first
            if len(letters) >= count:
                return letters
            assert time.monotonic() < deadline, f"{len(letters)} of {count} dead letters"
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        for service in self.services:
            await service.stop()


async def check_read_your_writes(h: Harness) -> None:
    """With its view's background poll stopped, a running worker matches an event published right
    after a create against the new webhook, and one published right after a delete (and a second
    create) against the table without the deleted one."""
    service = await h.start()
    await service.view.stop()  # no poll: only the reads' own catching up can bring the changes
    first = await h.webhook_unsynced("/first")
    await h.publish(call_event())
    await h.sink.wait_for(1, "/first")
    assert await h.store.delete(first.id)
    await h.webhook_unsynced("/second")
    await h.publish(call_event())
    await h.sink.wait_for(1, "/second")
    await h.settled()
    assert len(h.sink.at("/first")) == 1


@asynccontextmanager
async def open_harness(
    make_settings: Callable[..., Settings], redis: RedisClient, **overrides: Any
) -> AsyncIterator[Harness]:
    sink = await Sink().start()
    harness = Harness(make_settings(**{**FAST, **overrides}), redis, sink)
    try:
        yield harness
    finally:
        await harness.close()
        await sink.close()
