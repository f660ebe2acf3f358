"""The Webhooks API: CallFire's ``/v2/webhooks``, behind HTTP Basic, described at ``/openapi.json``
and, in CallFire's own Swagger 2.0, at ``/v2/api-docs/swagger.json``.

``setup_api`` adds the operations of every module in ``API_MODULES`` (each exposes
``OPERATIONS``; a new module is one more entry), the auth middleware and the document.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from types import ModuleType

from aiohttp import web

from relay.api import (
    dead_letters,
    deliveries,
    dry_run,
    events,
    recovery,
    resources,
    surface,
    swagger,
    webhooks,
)
from relay.api.auth import api_middleware
from relay.api.config_file import apply_webhooks_file
from relay.api.openapi import openapi_handler
from relay.api.registry import CLOCK, RETENTION_MS, WEBHOOK_STORE, Handler, Operation
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import RedisClient
from relay.store.webhooks import WebhookStore

API_MODULES: tuple[ModuleType, ...] = (
    resources,
    dry_run,
    webhooks,
    deliveries,
    recovery,
    dead_letters,
    events,
    surface,
)
"""Order matters: ``/v2/webhooks/resources`` and ``/v2/webhooks/dry-run`` must come before
``/v2/webhooks/{id}``."""


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def operations() -> list[Operation]:
    return [op for module in API_MODULES for op in module.OPERATIONS]


def _add_routes(app: web.Application, ops: list[Operation]) -> None:
    """Each path's operations, then 405 with ``Allow`` for any other method on that path (so
    ``DELETE /v2/webhooks/resources`` is refused there, not taken for ``/v2/webhooks/{id}``)."""
    by_path: dict[str, list[Operation]] = {}
    for op in ops:
        by_path.setdefault(op.path, []).append(op)
    for path, path_ops in by_path.items():
        for op in path_ops:
            assert op.handler is not None
            app.router.add_route(op.method, path, op.handler)
        app.router.add_route("*", path, _method_not_allowed([op.method for op in path_ops]))


def _method_not_allowed(allowed: list[str]) -> Handler:
    async def not_allowed(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed(request.method, allowed)

    return not_allowed


def setup_api(
    app: web.Application,
    settings: Settings,
    redis: RedisClient,
    keys: Keys,
    *,
    clock: Callable[[], int] = wall_clock_ms,
) -> WebhookStore:
    """Mount the API on ``app``; returns its store. Call it after the other routes are added:
    ``/openapi.json`` lists what ``app`` serves, and only that (with RELAY_ADMIN_PORT, the admin
    surface: no callbacks, no probes, which the other port serves)."""
    store = WebhookStore(redis, keys, secret_keys=settings.secret_keys)
    app[WEBHOOK_STORE] = store
    app[CLOCK] = clock
    app[RETENTION_MS] = int(settings.stream_retention * 1000)
    app.middlewares.append(api_middleware(settings))
    ops = operations()
    _add_routes(app, [op for op in ops if op.handler is not None])
    app.router.add_get(swagger.PATH, swagger.swagger_handler(ops, settings.api_url))
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    served.add(("GET", "/openapi.json"))
    documented = [op for op in ops if op.handler is not None or (op.method, op.path) in served]
    app.router.add_get("/openapi.json", openapi_handler(documented))
    if settings.webhooks_file is not None:
        path = settings.webhooks_file

        async def apply_file(_: web.Application) -> AsyncIterator[None]:
            await apply_webhooks_file(store, path, clock())
            yield

        app.cleanup_ctx.append(apply_file)
    return store
