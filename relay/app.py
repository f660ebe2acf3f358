"""The aiohttp application: which parts a process runs, wired once, opened and closed in order."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from relay.api import setup_api
from relay.console import setup_console
from relay.delivery import setup_delivery
from relay.errors import error_middleware
from relay.health import Backlog, Readiness, setup_health
from relay.keys import GROUP, Keys
from relay.listener import Listener, setup_listener
from relay.settings import Settings
from relay.store.connect import RedisClient
from relay.store.ingest import IngestWriter

SETTINGS = web.AppKey("settings", Settings)
REDIS: web.AppKey[RedisClient] = web.AppKey("redis")
KEYS = web.AppKey("keys", Keys)
READINESS = web.AppKey("readiness", Readiness)


def keys_for(settings: Settings) -> Keys:
    return Keys(prefix=settings.key_prefix, partitions=settings.partitions)


def create_app(
    settings: Settings,
    redis: RedisClient,
    *,
    listener: bool = True,
    api: bool = True,
    workers: int = 0,
) -> web.Application:
    """The listener and the Webhooks API for ``relay serve``; ``workers`` delivery loops for
    ``relay work``; all of them for ``relay run``. Health, readiness and metrics always."""
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes)
    keys = keys_for(settings)
    readiness = Readiness(redis)
    app[SETTINGS] = settings
    app[REDIS] = redis
    app[KEYS] = keys
    app[READINESS] = readiness
    streams = [*keys.all_events(), *(keys.deliveries(p) for p in range(keys.partitions))]
    setup_health(app, readiness, Backlog(redis=redis, streams=streams, group=GROUP) if workers > 0 else None)
    if listener:
        writer = IngestWriter(
            redis,
            keys,
            dedup_window=settings.dedup_window,
            timeout=settings.redis_timeout,
            min_replicas=settings.redis_min_replicas,
        )
        setup_listener(app, Listener(settings, writer))

        async def writer_lifecycle(_: web.Application) -> AsyncIterator[None]:
            await writer.start()
            yield
            await writer.stop()

        app.cleanup_ctx.append(writer_lifecycle)
    if workers > 0:
        setup_delivery(app, settings, redis, keys, readiness, workers)
    if api:
        setup_api(app, settings, redis, keys)
        setup_console(app, settings, redis, keys)
    return app
