"""``/v2/webhooks``: create, find, get, update and delete webhooks, CallFire's way."""

from __future__ import annotations

import structlog
from aiohttp import web
from pydantic import ValidationError

from relay.api import http
from relay.api.registry import CLOCK, ERROR_RESPONSES, WEBHOOK_STORE, Operation, PathParam, Response
from relay.api.schemas import (
    MAX_LIMIT,
    ErrorResponse,
    FieldsQuery,
    FindWebhooksQuery,
    ResourceId,
    WebhookPage,
)
from relay.errors import ApiError
from relay.webhooks.model import WebhookBody, WebhookOut, WebhookSpec, merged
from relay.webhooks.query import WebhookQuery

log = structlog.get_logger("relay.api")


def _not_found(webhook_id: int) -> ApiError:
    return ApiError(404, f"no webhook with id {webhook_id}")


async def find_webhooks(request: web.Request) -> web.Response:
    params = http.query(request, FindWebhooksQuery)
    limit = min(params.limit, MAX_LIMIT)
    query = WebhookQuery(
        name=params.name,
        resource=params.resource,
        event=params.event,
        callback=params.callback,
        enabled=params.enabled,
        offset=params.offset,
        limit=limit,
    )
    total, page = await request.app[WEBHOOK_STORE].find(query)
    data = {"items": [w.out() for w in page], "limit": limit, "offset": params.offset, "totalCount": total}
    return http.json_response(data, fields=params.fields)


async def create_webhook(request: web.Request) -> web.Response:
    body = await http.body(request, WebhookBody)
    now_ms = request.app[CLOCK]()
    try:
        spec = merged(None, body, now_ms)
    except ValidationError as exc:
        raise http.bad_request(exc, "body") from None
    webhook = await request.app[WEBHOOK_STORE].create(spec, now_ms)
    log.info("webhook created", webhook_id=webhook.id, resource=webhook.resource, events=list(webhook.events))
    return http.json_response({"id": webhook.id}, status=201)


async def get_webhook(request: web.Request) -> web.Response:
    webhook_id = http.int_param(request, "id")
    params = http.query(request, FieldsQuery)
    webhook = await request.app[WEBHOOK_STORE].get(webhook_id)
    if webhook is None:
        raise _not_found(webhook_id)
    return http.json_response(webhook.out(), fields=params.fields)


async def update_webhook(request: web.Request) -> web.Response:
    webhook_id = http.int_param(request, "id")
    body = await http.body(request, WebhookBody)
    now_ms = request.app[CLOCK]()

    def change(current: WebhookSpec) -> WebhookSpec:
        return merged(current, body, now_ms)

    try:
        webhook = await request.app[WEBHOOK_STORE].update(webhook_id, change, now_ms)
    except ValidationError as exc:
        raise http.bad_request(exc, "body") from None
    if webhook is None:
        raise _not_found(webhook_id)
    log.info("webhook updated", webhook_id=webhook_id, changed=sorted(body.changes()))
    return web.Response(status=200)


async def delete_webhook(request: web.Request) -> web.Response:
    webhook_id = http.int_param(request, "id")
    if not await request.app[WEBHOOK_STORE].delete(webhook_id):
        raise _not_found(webhook_id)
    log.info("webhook deleted", webhook_id=webhook_id)
    return web.Response(status=204)


ID = PathParam("id", {"type": "integer", "format": "int64"}, "An id of a webhook")
_ERR = ERROR_RESPONSES
_ERR_404 = {**_ERR, 404: Response(description="no such webhook", model=ErrorResponse)}
_TOO_LARGE = {413: Response(description="the body is larger than RELAY_MAX_BODY_BYTES", model=ErrorResponse)}

OPERATIONS = (
    Operation(
        method="GET",
        path="/v2/webhooks",
        operation_id="findWebhooks",
        summary="Find webhooks",
        handler=find_webhooks,
        responses={200: Response(description="a page of webhooks", model=WebhookPage), **_ERR},
        query=FindWebhooksQuery,
    ),
    Operation(
        method="POST",
        path="/v2/webhooks",
        operation_id="createWebhook",
        summary="Create a webhook",
        handler=create_webhook,
        responses={201: Response(description="the new webhook's id", model=ResourceId), **_ERR, **_TOO_LARGE},
        body=WebhookBody,
    ),
    Operation(
        method="GET",
        path="/v2/webhooks/{id}",
        operation_id="getWebhook",
        summary="Find a specific webhook",
        handler=get_webhook,
        responses={200: Response(description="the webhook", model=WebhookOut), **_ERR_404},
        query=FieldsQuery,
        path_params=(ID,),
    ),
    Operation(
        method="PUT",
        path="/v2/webhooks/{id}",
        operation_id="updateWebhook",
        summary="Update a webhook",
        handler=update_webhook,
        responses={200: Response(description="updated; no body"), **_ERR_404, **_TOO_LARGE},
        path_params=(ID,),
        body=WebhookBody,
    ),
    Operation(
        method="DELETE",
        path="/v2/webhooks/{id}",
        operation_id="deleteWebhook",
        summary="Delete a webhook",
        handler=delete_webhook,
        responses={204: Response(description="deleted"), **_ERR_404},
        path_params=(ID,),
    ),
)
