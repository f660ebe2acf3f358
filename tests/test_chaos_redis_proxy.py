"""Scenario 5: Redis slow or cut off mid-command. No reply goes to the wrong request, and no
client retry slips a duplicate past the dedup."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from relay.app import create_app
from relay.events import StreamEvent
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import connect
from tests.callbacks import call_event, callback_body, signed
from tests.chaos.proxy import Faults, FlakyProxy
from tests.redis_server import PrivateRedis

pytestmark = pytest.mark.slow

CALLBACKS = 300


@pytest.fixture
async def proxy(redis_server: PrivateRedis) -> AsyncIterator[FlakyProxy]:
    faults = Faults(delay=0.05, delay_rate=0.2, reset_rate=0.15)
    flaky = await FlakyProxy(redis_server.port, faults).start()
    yield flaky
    await flaky.stop()


async def test_flaky_link_to_redis_never_mismatches_or_duplicates(
    proxy: FlakyProxy, make_settings: Callable[..., Settings], redis: Any
) -> None:
    """Each acknowledged callback is on the stream exactly once with its own event count."""
    settings = make_settings(redis_url=proxy.url, redis_timeout="1s")
    keys = Keys(settings.key_prefix, settings.partitions)
    client_redis = connect(proxy.url, socket_timeout=1, socket_connect_timeout=1)
    client = TestClient(TestServer(create_app(settings, client_redis)))
    await client.start_server()
    # Bodies carry 1, 2 or 3 events: a reply given to the wrong request would show a wrong count.
    bodies = [
        callback_body(*[call_event(call_id=n * 10 + i) for i in range(n % 3 + 1)]) for n in range(CALLBACKS)
    ]
    acknowledged: dict[str, int] = {}
    gate = asyncio.Semaphore(16)

    async def send(body: bytes) -> None:
        for _ in range(20):  # CallFire retries until it gets a 2xx
            async with gate:
                resp = await client.post("/callbacks/callfire", data=body, headers=signed(body))
                data = await resp.json()
            if resp.status == 200:
                digest = hashlib.sha256(body).hexdigest()
                if data["status"] == "accepted":
                    assert data["events"] == body.count(b'"eventType"')
                acknowledged[digest] = body.count(b'"eventType"')
                return
            assert resp.status == 503
            await asyncio.sleep(0.02)
        raise AssertionError("a callback never got through")

    try:
        await asyncio.gather(*(send(body) for body in bodies))
    finally:
        await client.close()
        await client_redis.aclose()
    assert proxy.resets > 0, "the proxy injected no fault: the test proved nothing"
    stored: Counter[str] = Counter()
    for stream in keys.all_events():
        for _, fields in await redis.xrange(stream):
            stored[StreamEvent.from_fields(fields).callback] += 1
    assert len(acknowledged) == CALLBACKS
    assert stored == Counter(acknowledged)  # every acknowledged callback, each event exactly once
