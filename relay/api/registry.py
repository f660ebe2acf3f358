"""The API's operations, described once: the router and ``/openapi.json`` are both built from them.

A module of the API exposes ``OPERATIONS: tuple[Operation, ...]`` and is listed in
``relay.api.API_MODULES``; ``setup_api`` adds each operation's route and its description. An
operation without a handler only describes a route another module adds (``/callbacks/callfire``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from relay.api.schemas import ErrorResponse
from relay.store.webhooks import WebhookStore

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

WEBHOOK_STORE = web.AppKey("webhook_store", WebhookStore)
CLOCK: web.AppKey[Callable[[], int]] = web.AppKey("clock")
"""Unix ms now; tests put a fixed clock here."""
RETENTION_MS = web.AppKey("retention_ms", int)
"""RELAY_STREAM_RETENTION, in ms: how far back events are kept (and can be backfilled)."""

ERRORS = (400, 401, 403, 429, 500, 503)
"""The error statuses every operation behind HTTP Basic may answer (429: too many wrong
credentials from one address; 503: Redis unreachable)."""


@dataclass(frozen=True)
class PathParam:
    name: str
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True, kw_only=True)
class Response:
    description: str
    model: type[BaseModel] | None = None
    """The body's model; with neither a model nor a ``schema``, the response has no body."""
    content_type: str = "application/json"
    schema: dict[str, Any] | None = None
    """A raw JSON schema of the body, for bodies without a model."""


ERROR_RESPONSES = {status: Response(description="error", model=ErrorResponse) for status in ERRORS}
"""The ``responses`` entries of ``ERRORS``, in CallFire's error shape: one dict every operation spreads."""


@dataclass(frozen=True, kw_only=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    handler: Handler | None
    responses: dict[int, Response]
    query: type[BaseModel] | None = None
    """Its query parameters, one per field."""
    path_params: tuple[PathParam, ...] = ()
    body: type[BaseModel] | None = None
    authenticated: bool = True
    tags: tuple[str, ...] = ("webhooks",)
    extra: dict[str, Any] = field(default_factory=dict)
    """Merged into the operation's OpenAPI object as is (e.g. a raw request body description)."""
