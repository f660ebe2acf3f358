"""Wiring delivery workers into a process's aiohttp application."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from relay.delivery.service import DeliveryService
from relay.health import Readiness
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import RedisClient
from relay.tracing import Tracing

DELIVERY = web.AppKey("delivery", DeliveryService)


def setup_delivery(
    app: web.Application,
    settings: Settings,
    redis: RedisClient,
    keys: Keys,
    readiness: Readiness,
    workers: int,
    tracing: Tracing | None = None,
) -> DeliveryService:
    """Start ``workers`` delivery workers with the app, stop them (draining) with it."""
    service = DeliveryService(settings, redis, keys, workers=workers, tracing=tracing)
    app[DELIVERY] = service
    readiness.add("delivery", service.problem)
    readiness.liveness.add("delivery", service.stall)

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app.cleanup_ctx.append(lifecycle)
    return service
