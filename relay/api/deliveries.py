"""``GET /v2/webhooks/{id}/deliveries``: a webhook's recent delivery attempts, newest first.

The relay's own addition to CallFire's API: each attempt's time, delivery id (the ``webhook-id``
header the receiver saw), attempt number, outcome, HTTP status, latency and error. Only the
newest ``RELAY_ATTEMPTS_KEPT`` are kept.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from relay.api import http
from relay.api.registry import ERROR_RESPONSES, WEBHOOK_STORE, Operation, PathParam, Response
from relay.api.schemas import ErrorResponse, PageQuery
from relay.errors import ApiError
from relay.store.attempts import Attempts
from relay.webhooks.json_types import Int64


class DeliveryAttempt(BaseModel):
    at: Int64 = Field(description="When the attempt ended, unix ms.")
    deliveryId: str = Field(description="The webhook-id header the receiver got.")
    attempt: int = Field(description="1 for the first attempt.", json_schema_extra={"format": "int32"})
    outcome: Literal["delivered", "retry", "dead", "refused"]
    status: int | None = Field(description="HTTP status; null when no response came.")
    latencyMs: float = Field(description="Duration of the attempt.")
    error: str | None = Field(description="What went wrong when no response came.")
    webhookId: Int64 | None = Field(None, description="The webhook it was for.")
    retryAt: Int64 | None = Field(None, description="Outcome retry: when the next attempt is due, unix ms.")
    answer: str | None = Field(None, description="The first 1 KiB of the answer's body, unless 2xx.")


class DeliveryAttemptPage(BaseModel):
    items: list[DeliveryAttempt]
    limit: int = Field(json_schema_extra={"format": "int32"})
    offset: int = Field(json_schema_extra={"format": "int32"})
    totalCount: int = Field(json_schema_extra={"format": "int32"})


async def find_deliveries(request: web.Request) -> web.Response:
    webhook_id = http.int_param(request, "id")
    params = http.query(request, PageQuery)
    store = request.app[WEBHOOK_STORE]
    if await store.get(webhook_id) is None:
        raise ApiError(404, f"no webhook with id {webhook_id}")
    limit = params.page_limit
    total, items = await Attempts(redis=store.redis, keys=store.keys, kept=0).recent(
        webhook_id, params.offset, limit
    )
    data = {"items": items, "limit": limit, "offset": params.offset, "totalCount": total}
    return http.json_response(data, fields=params.fields)


ID = PathParam("id", {"type": "integer", "format": "int64"}, "An id of a webhook")

OPERATIONS = (
    Operation(
        method="GET",
        path="/v2/webhooks/{id}/deliveries",
        operation_id="findWebhookDeliveries",
        summary="Recent delivery attempts of a webhook, newest first",
        handler=find_deliveries,
        responses={
            200: Response(description="a page of delivery attempts", model=DeliveryAttemptPage),
            404: Response(description="no such webhook", model=ErrorResponse),
            **ERROR_RESPONSES,
        },
        query=PageQuery,
        path_params=(ID,),
    ),
)
