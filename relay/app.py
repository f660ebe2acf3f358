"""The aiohttp applications: which parts a process runs, wired once, opened and closed in order.

Two surfaces. The **public** one is what CallFire reaches: ``POST /callbacks/callfire`` and the
probes. The **admin** one is everything else (``setup_admin``: ``/v2``, ``/metrics``,
``/openapi.json`` and every later page). Without ``RELAY_ADMIN_PORT`` both are one application on
``RELAY_PORT``; with it, the admin application is apart, at ``app[ADMIN]``, served on its own port
(``relay.runtime``), and the public port answers 404 to every other path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from relay.api import setup_api
from relay.console import setup_console
from relay.delivery import setup_delivery
from relay.errors import error_middleware
from relay.health import Backlog, Readiness, setup_health, setup_metrics
from relay.ingest.handler import Listener, setup_listener
from relay.ingest.writer import IngestWriter
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import RedisClient
from relay.tracing import Tracing

SETTINGS = web.AppKey("settings", Settings)
REDIS: web.AppKey[RedisClient] = web.AppKey("redis")
KEYS = web.AppKey("keys", Keys)
READINESS = web.AppKey("readiness", Readiness)
ADMIN: web.AppKey[web.Application] = web.AppKey("admin")
"""The admin application, on the public one, when ``RELAY_ADMIN_PORT`` puts it apart."""


def keys_for(settings: Settings) -> Keys:
    return Keys(prefix=settings.key_prefix, partitions=settings.partitions)


def admin_app(app: web.Application) -> web.Application:
    """Where admin routes go: the admin application, or ``app`` itself when there is one port."""
    return app.get(ADMIN, app)


def _application(settings: Settings, redis: RedisClient, keys: Keys, readiness: Readiness) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[REDIS] = redis
    app[KEYS] = keys
    app[READINESS] = readiness
    return app


def create_app(
    settings: Settings,
    redis: RedisClient,
    *,
    listener: bool = True,
    api: bool = True,
    workers: int = 0,
    tracing: Tracing | None = None,
) -> web.Application:
    """The listener and the Webhooks API for ``relay serve``; ``workers`` delivery loops for
    ``relay work``; all of them for ``relay run``. Probes and metrics always. Returns the public
    application; the admin one is ``admin_app(app)``. ``tracing``: off unless given."""
    keys = keys_for(settings)
    readiness = Readiness(redis)
    app = _application(settings, redis, keys, readiness)
    if settings.admin_port is not None:
        app[ADMIN] = _application(settings, redis, keys, readiness)
    setup_health(app, readiness)
    if listener:
        _setup_ingest(app, settings, redis, keys, tracing)
    if workers > 0:
        setup_delivery(app, settings, redis, keys, readiness, workers, tracing)
    backlog = Backlog(redis=redis, keys=keys) if workers > 0 else None
    setup_admin(app, settings, redis, keys, api=api, backlog=backlog)
    return app


def setup_admin(
    app: web.Application,
    settings: Settings,
    redis: RedisClient,
    keys: Keys,
    *,
    api: bool,
    backlog: Backlog | None,
) -> None:
    """Every admin route, on ``admin_app(app)``: a later admin page is added here (or, for a /v2
    operation, to ``relay.api.API_MODULES``), and so lands on RELAY_ADMIN_PORT when it is set."""
    admin = admin_app(app)
    setup_metrics(admin, backlog)
    if api:
        setup_api(admin, settings, redis, keys)
        setup_console(admin, settings, redis, keys)


def _setup_ingest(
    app: web.Application, settings: Settings, redis: RedisClient, keys: Keys, tracing: Tracing | None
) -> None:
    writer = IngestWriter(
        redis,
        keys,
        dedup_window=settings.dedup_window,
        timeout=settings.redis_timeout,
        min_replicas=settings.redis_min_replicas,
    )
    setup_listener(app, Listener(settings, writer, tracing))

    async def writer_lifecycle(_: web.Application) -> AsyncIterator[None]:
        await writer.start()
        yield
        await writer.stop()

    app.cleanup_ctx.append(writer_lifecycle)
