"""``POST /v2/webhooks/{id}/recover`` and ``/backfill``: a subscriber's missed deliveries, again.

- **Recover** replays the webhook's dead letters written in a window (as Svix's recover does).
- **Backfill** delivers to this webhook, and to no other, every retained event received since a
  time that it wants now (``relay.webhooks.matching.wants``), in the order received, each with
  the ``webhook-id`` that event has for this webhook: a backfill repeated by mistake can be
  deduplicated by the receiver.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from relay.api import http
from relay.api.recovery_schemas import BackfillBody, BackfillResult, RecoverBody, RecoverResult
from relay.api.registry import (
    CLOCK,
    ERROR_RESPONSES,
    RETENTION_MS,
    WEBHOOK_STORE,
    Operation,
    PathParam,
    Response,
)
from relay.api.schemas import ErrorResponse
from relay.errors import ApiError
from relay.store.dead_letters import DeadLetters, LetterQuery
from relay.store.event_log import EventLog
from relay.store.redeliver import queue_delivery
from relay.webhooks.matching import wants
from relay.webhooks.model import Webhook

log = structlog.get_logger("relay.api")

BATCH = 500


async def _webhook(request: web.Request) -> Webhook:
    webhook_id = http.int_param(request, "id")
    webhook = await request.app[WEBHOOK_STORE].get(webhook_id)
    if webhook is None:
        raise ApiError(404, f"no webhook with id {webhook_id}")
    return webhook


async def recover(request: web.Request) -> web.Response:
    webhook = await _webhook(request)
    body = await http.body(request, RecoverBody)
    store = request.app[WEBHOOK_STORE]
    query = LetterQuery(webhook_id=webhook.id, since=body.since, until=body.until)
    replayed, _ = await DeadLetters(store.redis, store.keys).replay_matching(query)
    log.info("webhook recovered", webhook_id=webhook.id, replayed=replayed)
    return http.json_response({"replayed": replayed})


async def backfill(request: web.Request) -> web.Response:
    webhook = await _webhook(request)
    body = await http.body(request, BackfillBody)
    oldest = request.app[CLOCK]() - request.app[RETENTION_MS]
    if body.since < oldest:
        raise ApiError(
            400,
            f"since: {body.since} is older than RELAY_STREAM_RETENTION allows; the oldest retained "
            f"time is {oldest}",
        )
    if not webhook.live(request.app[CLOCK]()):
        raise ApiError(409, f"webhook {webhook.id} is disabled or expired: enable it first")
    store = request.app[WEBHOOK_STORE]
    queued = 0
    pipe = store.redis.pipeline(transaction=False)
    async for found in EventLog(store.redis, store.keys).received_since(body.since):
        if wants(webhook, found.event):
            queue_delivery(pipe, store.keys, webhook.id, found.event)
            queued += 1
            if queued % BATCH == 0:
                await pipe.execute()
    await pipe.execute()
    log.info("webhook backfilled", webhook_id=webhook.id, since=body.since, queued=queued)
    return http.json_response({"queued": queued}, status=202)


ID = PathParam("id", {"type": "integer", "format": "int64"}, "An id of a webhook")
_ERR = ERROR_RESPONSES
_ERR_404 = {**_ERR, 404: Response(description="no such webhook", model=ErrorResponse)}

OPERATIONS = (
    Operation(
        method="POST",
        path="/v2/webhooks/{id}/recover",
        operation_id="recoverWebhook",
        summary="Replay the webhook's dead letters written in a window",
        handler=recover,
        responses={200: Response(description="how many were replayed", model=RecoverResult), **_ERR_404},
        path_params=(ID,),
        body=RecoverBody,
    ),
    Operation(
        method="POST",
        path="/v2/webhooks/{id}/backfill",
        operation_id="backfillWebhook",
        summary="Deliver to this webhook the retained events it matches, received since a time",
        handler=backfill,
        responses={
            202: Response(description="how many deliveries were queued", model=BackfillResult),
            **_ERR_404,
            409: Response(description="the webhook is disabled or expired", model=ErrorResponse),
        },
        path_params=(ID,),
        body=BackfillBody,
    ),
)
