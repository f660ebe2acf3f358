"""Descriptions of the routes other modules add, so ``/openapi.json`` covers every route its app serves.

These operations have no handler here: ``relay.ingest.handler`` and ``relay.health`` add the routes;
``/openapi.json`` lists an operation only when the running app has its route.
"""

from __future__ import annotations

from relay.api import swagger
from relay.api.registry import Operation, Response
from relay.api.schemas import ErrorResponse

_ANY_OBJECT = {"type": "object"}
_STATUS = {"type": "object", "properties": {"status": {"type": "string"}}}
_READY = {
    "type": "object",
    "properties": {
        "status": {"type": "string"},
        "problems": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_ACCEPTED = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["accepted", "duplicate"]},
        "events": {"type": "integer"},
    },
}
_SIGNATURE = {
    "name": "X-CallFire-Signature",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Base64 of the HMAC-SHA1 of the raw body, keyed with a CallFire secret.",
}


def _error(description: str) -> Response:
    return Response(description=description, model=ErrorResponse)


OPERATIONS = (
    Operation(
        method="POST",
        path="/callbacks/callfire",
        operation_id="receiveCallfireCallback",
        summary="A CallFire callback: verified, made durable, then acknowledged",
        handler=None,
        responses={
            200: Response(description="durable (or a repeat inside the dedup window)", schema=_ACCEPTED),
            400: _error("not a CallFire callback"),
            401: _error("missing or wrong signature"),
            408: _error("the body did not arrive in time"),
            413: _error("the body, or its number of events, is too large"),
            415: _error("a Content-Encoding other than identity"),
            429: _error("too many failed signatures from this address; retry after Retry-After"),
            503: _error("cannot be made durable now; retry after Retry-After seconds"),
        },
        authenticated=False,
        tags=("callbacks",),
        extra={
            "parameters": [_SIGNATURE],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ANY_OBJECT}}},
        },
    ),
    Operation(
        method="GET",
        path="/healthz",
        operation_id="healthz",
        summary="The process answers",
        handler=None,
        responses={200: Response(description="alive", schema=_STATUS)},
        authenticated=False,
        tags=("operations",),
    ),
    Operation(
        method="GET",
        path="/readyz",
        operation_id="readyz",
        summary="Redis answers and no loop is stalled",
        handler=None,
        responses={
            200: Response(description="ready", schema=_READY),
            503: Response(description="not ready", schema=_READY),
        },
        authenticated=False,
        tags=("operations",),
    ),
    Operation(
        method="GET",
        path="/metrics",
        operation_id="metrics",
        summary="Prometheus metrics",
        handler=None,
        responses={
            200: Response(description="metrics", content_type="text/plain", schema={"type": "string"})
        },
        authenticated=False,
        tags=("operations",),
    ),
    Operation(
        method="GET",
        path=swagger.PATH,
        operation_id="callfireSwagger",
        summary="CallFire's Swagger 2.0 description of /v2/webhooks, located at this relay",
        handler=None,
        responses={200: Response(description="the Swagger 2.0 document", schema={"type": "object"})},
        authenticated=False,
        tags=("operations",),
    ),
    Operation(
        method="GET",
        path="/openapi.json",
        operation_id="openapi",
        summary="This document",
        handler=None,
        responses={200: Response(description="the OpenAPI document", schema={"type": "object"})},
        authenticated=False,
        tags=("operations",),
    ),
)
