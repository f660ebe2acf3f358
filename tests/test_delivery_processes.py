"""Real `relay work` processes: killed mid-delivery, sharing the streams, stopped by SIGTERM; and
workers riding out a Redis that restarts empty."""

from __future__ import annotations

import asyncio
import re
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from relay.settings import Settings
from relay.store.connect import RedisClient, connect
from tests.delivery_harness import Harness, open_harness
from tests.processes import RelayProcess
from tests.redis_server import PrivateRedis
from tests.sink import Reply

pytestmark = pytest.mark.slow

Make = Callable[..., Settings]


def worker(h: Harness, log: Path, **settings: str) -> RelayProcess:
    values = {
        "redis_url": str(h.settings.redis_url),
        "key_prefix": h.settings.key_prefix,
        "partitions": str(h.settings.partitions),
        "egress_allow": "127.0.0.0/8",
        "reclaim_idle": "1s",
        "delivery_timeout": "5s",
        "shutdown_grace": "5s",
    }
    values.update(settings)
    return RelayProcess("work", log, **values)


def delivered(process: RelayProcess) -> float:
    """relay_deliveries_total{outcome="delivered"} as the process's /metrics says."""
    with urllib.request.urlopen(process.base_url + "/metrics", timeout=2) as resp:  # noqa: S310
        text = resp.read().decode()
    found = re.findall(r'relay_deliveries_total\{outcome="delivered",status_class="2xx"\} ([0-9.e+]+)', text)
    return float(found[0]) if found else 0.0


async def test_killed_worker_loses_nothing(make_settings: Make, redis: RedisClient, tmp_path: Path) -> None:
    """SIGKILL while a POST is in flight: another worker reclaims the entry and delivers it."""
    async with open_harness(make_settings, redis) as h:
        h.sink.script("/hook", Reply(200, delay=10))
        await h.webhook()
        first = worker(h, tmp_path / "first.log").start()
        try:
            await h.publish()
            await h.sink.wait_for(1, within=10)
        finally:
            first.kill()
        second = worker(h, tmp_path / "second.log").start()
        try:
            _, again = await h.sink.wait_for(2, within=10)
            await h.settled(within=5)
            assert again.delivery_id == h.sink.received[0].delivery_id
        finally:
            second.kill()


async def test_two_workers_share_the_streams(make_settings: Make, redis: RedisClient, tmp_path: Path) -> None:
    """Two processes on one group: every event delivered exactly once, both doing a share."""
    async with open_harness(make_settings, redis) as h:
        h.sink.always("/hook", Reply(200, delay=0.05))
        await h.webhook()
        procs = [worker(h, tmp_path / f"w{n}.log", max_in_flight="8") for n in range(2)]
        for proc in procs:
            proc.start(wait_ready=False)
        try:
            for proc in procs:
                await asyncio.to_thread(proc.wait_ready)
            for _ in range(100):
                await h.publish()
            await h.sink.wait_for(100, within=15)
            await h.settled(within=5)
            assert len({r.delivery_id for r in h.sink.received}) == len(h.sink.received) == 100
            shares = [delivered(proc) for proc in procs]
            assert sum(shares) == 100 and min(shares) > 0
        finally:
            for proc in procs:
                proc.kill()


async def test_sigterm_finishes_in_flight_and_exits_0(
    make_settings: Make, redis: RedisClient, tmp_path: Path
) -> None:
    """SIGTERM during a delivery: it completes within the grace, is acknowledged, exit code 0."""
    async with open_harness(make_settings, redis) as h:
        h.sink.always("/hook", Reply(200, delay=1.0))
        await h.webhook()
        proc = worker(h, tmp_path / "w.log").start()
        try:
            await h.publish()
            await h.sink.wait_for(1, within=10)
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.proc.wait, 10) == 0
            assert await h.pending() == 0
            assert len(h.sink.received) == 1
        finally:
            proc.kill()


async def test_workers_recover_after_redis_restarts_empty(make_settings: Make) -> None:
    """Redis comes back without its data: the workers recreate their groups and deliver again."""
    server = PrivateRedis()
    server.start()
    redis = connect(server.url)
    try:
        async with open_harness(make_settings, redis, redis_url=server.url) as h:
            await h.webhook()
            await h.start()
            await h.publish()
            await h.sink.wait_for(1)
            await asyncio.to_thread(server.restart, False)
            await redis.connection_pool.disconnect()  # the test's own client: drop dead connections
            started = time.monotonic()
            await h.webhook()  # the table was lost with everything else
            await h.publish()
            await h.sink.wait_for(2, within=10)
            assert time.monotonic() - started < 5
            await h.settled()
    finally:
        await redis.aclose()
        server.close()
