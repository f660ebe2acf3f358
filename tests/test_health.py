"""/healthz and /readyz tell the truth: alive is not ready, and not ready says why."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from relay.app import READINESS
from relay.settings import Settings
from relay.store.connect import RedisClient, connect
from tests.redis_server import PrivateRedis
from tests.traffic import RunningRelay, running_relay


async def probe(relay: RunningRelay, path: str) -> tuple[int, Any]:
    status, body = await relay.request("GET", path)
    return status, orjson.loads(body)


async def ready_within(relay: RunningRelay, within: float = 5.0) -> tuple[int, Any]:
    """Poll /readyz until 200 (worker loops start after the webhook table loads), bounded."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        status, body = await probe(relay, "/readyz")
        if status == 200 or asyncio.get_running_loop().time() > deadline:
            return status, body
        await asyncio.sleep(0.02)


async def test_ready_when_redis_answers(make_settings: Callable[..., Settings], redis: RedisClient) -> None:
    """A listener on a live Redis: alive and ready."""
    async with running_relay(make_settings(), redis) as relay:
        assert await probe(relay, "/healthz") == (200, {"status": "ok"})
        assert await ready_within(relay) == (200, {"status": "ok"})


async def test_not_ready_when_redis_does_not_answer(make_settings: Callable[..., Settings]) -> None:
    """With Redis unreachable /readyz is 503 naming Redis, while /healthz stays 200 (no restart)."""
    settings = make_settings(redis_url="redis://127.0.0.1:1/0")
    dead = connect("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        async with running_relay(settings, dead) as relay:
            assert (await probe(relay, "/healthz"))[0] == 200
            status, body = await probe(relay, "/readyz")
    finally:
        await dead.aclose()
    assert status == 503
    assert body["status"] == "unavailable" and "redis" in body["problems"]


async def test_a_failing_readiness_check_is_reported_by_name(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """A part that reports a problem (e.g. a stalled delivery loop) makes /readyz 503 with its words."""
    async with running_relay(make_settings(), redis) as relay:
        app = relay.app
        app[READINESS].add("delivery", lambda: "1 delivery loop(s) stalled for 95s")
        status, body = await probe(relay, "/readyz")
    assert status == 503
    assert body["problems"] == {"delivery": "1 delivery loop(s) stalled for 95s"}


@pytest.fixture
def frozen_redis() -> Iterator[PrivateRedis]:
    """A Redis of this test's own, which the test may freeze (SIGSTOP) to stall every call."""
    server = PrivateRedis()
    server.start()
    yield server
    if server.process is not None:
        server.process.send_signal(signal.SIGCONT)
    server.close()


async def healthz_within(relay: RunningRelay, status: int, within: float = 10.0) -> tuple[int, Any]:
    """Poll /healthz until it answers ``status``, bounded."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await probe(relay, "/healthz")
        if found[0] == status or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def test_a_stalled_delivery_loop_fails_liveness(
    make_settings: Callable[..., Settings], frozen_redis: PrivateRedis
) -> None:
    """A delivery loop stuck past RELAY_STALL_TIMEOUT (its Redis frozen) makes /healthz and /readyz
    503 naming it."""
    settings = make_settings(redis_url=frozen_redis.url, stall_timeout="0.5s")
    redis = connect(frozen_redis.url)
    try:
        async with running_relay(settings, redis, listener=False, api=False, workers=1) as relay:
            assert await ready_within(relay) == (200, {"status": "ok"})
            assert await probe(relay, "/healthz") == (200, {"status": "ok"})
            assert frozen_redis.process is not None
            frozen_redis.process.send_signal(signal.SIGSTOP)
            try:
                status, body = await healthz_within(relay, 503)
                ready_status, ready = await probe(relay, "/readyz")
            finally:
                frozen_redis.process.send_signal(signal.SIGCONT)
    finally:
        await redis.aclose()
    assert status == 503
    assert body["status"] == "stalled"
    assert "delivery loop(s) stalled for" in body["problems"]["delivery"]
    assert ready_status == 503
    assert "stalled" in ready["problems"]["delivery"]
