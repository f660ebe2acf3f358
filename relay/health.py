"""``/healthz`` (the process answers, no loop is stalled), ``/readyz`` (Redis answers too, the
parts are loaded), ``/metrics`` (Prometheus). None of them needs credentials."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from aiohttp import web

from relay import metrics
from relay.clock import SYSTEM, Clock
from relay.keys import Keys
from relay.store.backlog import read_backlog
from relay.store.connect import RedisClient

Check = Callable[[], str | None]
"""A health check: None when fine, else what is wrong, in a few words."""


class Checks:
    """Named checks; ``problems`` are the failing ones, by name."""

    def __init__(self) -> None:
        self.checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def problems(self) -> dict[str, str]:
        found = {name: check() for name, check in self.checks.items()}
        return {name: problem for name, problem in found.items() if problem}


class Readiness:
    """Ready: Redis answers, every part added here is loaded, and the process is alive.

    ``liveness`` holds what only a restart cures (a stalled loop): /healthz answers 503 with it,
    and the process exits with code 3 (``relay.runtime``) for its supervisor to restart it."""

    def __init__(self, redis: RedisClient, timeout: float = 1.0) -> None:
        self.redis = redis
        self.timeout = timeout
        self.checks = Checks()
        self.liveness = Checks()

    def add(self, name: str, check: Check) -> None:
        self.checks.add(name, check)

    async def problems(self) -> dict[str, str]:
        found: dict[str, str] = {}
        try:
            async with asyncio.timeout(self.timeout):
                await self.redis.ping()
        except Exception as exc:
            found["redis"] = f"no answer from Redis ({type(exc).__name__})"
        return found | self.liveness.problems() | self.checks.problems()


class Backlog:
    """The backlog's gauges, read from Redis when /metrics is scraped (so they are as fresh as the
    scrape, at two round trips each: ``relay.store.backlog``): per stream, the consumer group's
    lag, pending count and lag as an age; the retry sets' size; the dead letters stored. Every
    process that runs workers reports the same values: aggregate with ``max``, not ``sum``."""

    def __init__(
        self, *, redis: RedisClient, keys: Keys, clock: Clock = SYSTEM, timeout: float = 1.0
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.timeout = timeout

    async def observe(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                state = await read_backlog(self.redis, self.keys)
        except Exception:  # Redis away: the gauges keep their last values
            return
        now_ms = self.clock.now_ms()
        for stream in state.streams:
            metrics.GROUP_PENDING.labels(stream.stream).set(stream.pending)
            if stream.lag is not None:  # None when Redis cannot tell (after a trim)
                metrics.GROUP_LAG.labels(stream.stream).set(stream.lag)
            age_ms = 0 if stream.oldest_ms is None else max(0, now_ms - stream.oldest_ms)
            metrics.GROUP_LAG_SECONDS.labels(stream.stream).set(age_ms / 1000)
        metrics.RETRY_SET_SIZE.set(state.scheduled)
        metrics.DEAD_LETTERS_STORED.set(state.dead_letters)


def _json(status: int, data: object) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def setup_health(app: web.Application, readiness: Readiness) -> None:
    """``/healthz`` and ``/readyz``: the probes, on the port the process's traffic comes to."""

    async def healthz(_: web.Request) -> web.Response:
        problems = readiness.liveness.problems()
        if problems:
            return _json(503, {"status": "stalled", "problems": problems})
        return _json(200, {"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        problems = await readiness.problems()
        if problems:
            return _json(503, {"status": "unavailable", "problems": problems})
        return _json(200, {"status": "ok"})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


def setup_metrics(app: web.Application, backlog: Backlog | None = None) -> None:
    """``/metrics``: on the admin surface (``relay.app.setup_admin``)."""

    async def metrics_view(_: web.Request) -> web.Response:
        if backlog is not None:
            await backlog.observe()
        body, content_type = metrics.exposition()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    app.router.add_get("/metrics", metrics_view)
