"""When Redis is away the listener says 503 and writes nothing; when it is back, all is well."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from relay.app import create_app
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import connect
from tests.callbacks import callback_body, signed
from tests.redis_server import PrivateRedis

pytestmark = pytest.mark.slow


@pytest.fixture
def own_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.close()


@pytest.fixture
async def outage_client(
    own_redis: PrivateRedis, make_settings: Callable[..., Settings]
) -> AsyncIterator[Any]:
    settings = make_settings(redis_url=own_redis.url, redis_timeout="1s")
    redis = connect(own_redis.url, socket_connect_timeout=0.5)
    client = TestClient(TestServer(create_app(settings, redis)))
    await client.start_server()
    yield client
    await client.close()
    await redis.aclose()


async def test_redis_down_gives_503_then_the_same_callback_is_accepted(
    own_redis: PrivateRedis, outage_client: Any
) -> None:
    """Redis stopped: 503 with Retry-After and readyz 503; restarted: the retry is accepted."""
    body = callback_body()
    own_redis.stop()
    resp = await outage_client.post("/callbacks/callfire", data=body, headers=signed(body))
    assert resp.status == 503
    assert int(resp.headers["Retry-After"]) > 0
    assert (await resp.json())["httpStatusCode"] == 503
    assert (await outage_client.get("/readyz")).status == 503
    assert (await outage_client.get("/healthz")).status == 200

    own_redis.start()
    resp = await outage_client.post("/callbacks/callfire", data=body, headers=signed(body))
    assert resp.status == 200
    assert (await resp.json())["status"] == "accepted"
    assert (await outage_client.get("/readyz")).status == 200


async def test_slow_redis_gives_503_and_the_retry_is_not_enqueued_twice(
    own_redis: PrivateRedis, outage_client: Any, make_settings: Callable[..., Settings]
) -> None:
    """Redis paused past RELAY_REDIS_TIMEOUT: 503; the late write lands once, the retry is a repeat."""
    admin = connect(own_redis.url)
    body = callback_body()
    await admin.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
    resp = await outage_client.post("/callbacks/callfire", data=body, headers=signed(body))
    assert resp.status == 503
    await admin.execute_command("CLIENT", "UNPAUSE")
    resp = await outage_client.post("/callbacks/callfire", data=body, headers=signed(body))
    assert resp.status == 200
    assert (await resp.json())["status"] in ("accepted", "duplicate")
    settings = make_settings(redis_url=own_redis.url)
    keys = Keys(settings.key_prefix, settings.partitions)
    total = sum([await admin.xlen(stream) for stream in keys.all_events()])
    assert total == 1
    await admin.aclose()
