"""``/healthz`` (the process answers), ``/readyz`` (Redis answers, loops are not stalled),
``/metrics`` (Prometheus). None of them needs credentials."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from aiohttp import web

from relay import metrics
from relay.store.connect import RedisClient

Check = Callable[[], str | None]
"""A readiness check: None when fine, else what is wrong, in a few words."""


class Readiness:
    def __init__(self, redis: RedisClient, timeout: float = 1.0) -> None:
        self.redis = redis
        self.timeout = timeout
        self.checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def problems(self) -> dict[str, str]:
        found: dict[str, str] = {}
        try:
            async with asyncio.timeout(self.timeout):
                await self.redis.ping()
        except Exception as exc:
            found["redis"] = f"no answer from Redis ({type(exc).__name__})"
        for name, check in self.checks.items():
            problem = check()
            if problem:
                found[name] = problem
        return found


def _json(status: int, data: object) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def setup_health(app: web.Application, readiness: Readiness) -> None:
    async def healthz(_: web.Request) -> web.Response:
        return _json(200, {"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        problems = await readiness.problems()
        if problems:
            return _json(503, {"status": "unavailable", "problems": problems})
        return _json(200, {"status": "ok"})

    async def metrics_view(_: web.Request) -> web.Response:
        body, content_type = metrics.exposition()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
