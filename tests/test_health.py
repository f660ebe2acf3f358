"""/healthz and /readyz tell the truth: alive is not ready, and not ready says why."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from relay.app import READINESS
from relay.settings import Settings
from relay.store.connect import RedisClient, connect
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
