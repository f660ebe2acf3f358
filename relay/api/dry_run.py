"""``POST /v2/webhooks/dry-run``: which retained events a webhook would have received since a
time, and the body each would get; nothing is delivered. The relay's own addition.

The webhook is checked as on create (a 400 names the field: ``webhook.filter.$or.1: ...``);
the scan covers every partition's retained events, oldest first, and stops after
``SCAN_LIMIT`` entries with ``truncated``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from relay import selector
from relay.api import http
from relay.api.registry import ERROR_RESPONSES, WEBHOOK_STORE, Operation, Response
from relay.api.schemas import ErrorResponse
from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.history import History
from relay.webhooks.dry_run import SAMPLE_SIZE, SCAN_LIMIT, DryRun, candidate
from relay.webhooks.json_types import FILTER_SCHEMA, Int64, JsonUnixMs
from relay.webhooks.model import Selection, WebhookBody

log = structlog.get_logger("relay.api")


def _described(name: str) -> str:
    return str(WebhookBody.model_fields[name].description)


class DryRunWebhook(Selection):
    """What a webhook selects: checked as on create."""

    model_config = ConfigDict(strict=True, extra="forbid")

    resource: str = Field(max_length=64, description=_described("resource"))
    events: list[Annotated[str, Field(max_length=64)]] = Field(
        max_length=32, description=_described("events")
    )
    filter: dict[str, Any] | None = Field(
        None, description=_described("filter"), json_schema_extra=FILTER_SCHEMA
    )
    fields: str | None = Field(
        None,
        max_length=2048,
        description=_described("fields"),
        json_schema_extra={"pattern": f"^$|{selector.PATTERN}"},
    )


class DryRunBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    webhook: DryRunWebhook
    since: JsonUnixMs = Field(description="Unix ms: the retained events appended since then are scanned.")


class DryRunItem(BaseModel):
    entryId: str = Field(description="The event's stream entry id.")
    receivedAt: Int64 = Field(description="When the relay received the event, unix ms.")
    body: dict[str, Any] = Field(description="The body the webhook would get, after its `fields`.")


class DryRunResult(BaseModel):
    totalCount: int = Field(description="How many scanned events the webhook would have received.")
    scanned: int = Field(description="How many retained entries were looked at.")
    truncated: bool = Field(description=f"The scan stopped after {SCAN_LIMIT:,} entries.")
    items: list[DryRunItem] = Field(description=f"The first {SAMPLE_SIZE} of those events, oldest first.")


async def scanned(redis: RedisClient, keys: Keys, body: DryRunBody) -> DryRun:
    """The dry run ``body`` asks for, over the retained events (the API's and the console's)."""
    hook = body.webhook
    webhook = candidate(
        resource=hook.resource, events=tuple(hook.events), filter_=hook.filter, fields=hook.fields
    )
    run = DryRun(webhook=webhook)
    started = time.monotonic()
    await run.scan(History(redis, keys).since(body.since))
    log.info(
        "dry run",
        resource=hook.resource,
        scanned=run.scanned,
        matched=run.total,
        truncated=run.truncated,
        seconds=round(time.monotonic() - started, 3),
    )
    return run


async def dry_run(request: web.Request) -> web.Response:
    body = await http.body(request, DryRunBody)
    store = request.app[WEBHOOK_STORE]
    run = await scanned(store.redis, store.keys, body)
    return web.Response(body=orjson.dumps(run.answer()), content_type="application/json")


_ERR = ERROR_RESPONSES
_TOO_LARGE = Response(description="the body is larger than RELAY_MAX_BODY_BYTES", model=ErrorResponse)

OPERATIONS = (
    Operation(
        method="POST",
        path="/v2/webhooks/dry-run",
        operation_id="dryRunWebhook",
        summary="Which retained events a webhook would have received since a time; nothing is delivered",
        handler=dry_run,
        responses={
            200: Response(description="the events it would have received", model=DryRunResult),
            **_ERR,
            413: _TOO_LARGE,
        },
        body=DryRunBody,
    ),
)
