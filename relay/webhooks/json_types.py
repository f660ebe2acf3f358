"""The webhook's JSON field types, limits and field descriptions, shared by the model
(``relay.webhooks.model``) and the API's schemas (/openapi.json, the swagger). Pure."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from relay.webhooks import filters

Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1, json_schema_extra={"format": "int64"})]


def integral(value: Any) -> Any:
    """JSON Schema's integers include ``5.0``: accept an integral float as its int."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt64 = Annotated[Int64, BeforeValidator(integral)]
"""An int64 in a request body: strict (no strings), but ``5.0`` is 5."""
JsonUnixMs = Annotated[
    int, Field(ge=0, le=2**63 - 1, json_schema_extra={"format": "int64"}), BeforeValidator(integral)
]
"""A time in a request body, unix ms: a JsonInt64 that is not negative."""
READ_ONLY = ("id", "createdAt", "updatedAt")
NULLABLE = ("name", "secret", "expiresAt", "fields", "filter", "rateLimit")
RATE_LIMIT_MAX = 10_000

DOCS = {
    "name": "A name of the webhook.",
    "resource": "The resource watched (GET /v2/webhooks/resources lists them).",
    "events": "Events on that resource that trigger the callback, matched case-insensitively.",
    "callback": "Absolute http(s) URL that receives the POST.",
    "secret": "Key of X-CallFire-Signature on each POST to the callback. Write-only.",
    "enabled": "An off switch; true by default.",
    "singleUse": "Fires once, then the webhook is deleted.",
    "expiresAt": "Unix ms after which the webhook no longer fires.",
    "fields": "Limits the callback body to the selected fields, e.g. events(eventType,resource(id)).",
    "nonStrictSsl": "TLS certificate verification is off for this callback.",
    "filter": "The relay's extension: a predicate over the event's JSON; only events it holds for are "
    'delivered, e.g. {"resource.finalCallResult": {"$in": ["LA", "AM"]}}. Paths map to a value '
    "or to operators ($eq, $neq, $in, $nin, $gt, $gte, $lt, $lte, $prefix, $exist); $and, $or, "
    "$not combine; at most 64 nodes, depth 8 (docs/api.md).",
    "rateLimit": "Most deliveries a second to this callback, across all workers (1 to 10000); "
    "null for no limit. A relay extension.",
}
FILTER_SCHEMA: dict[str, Any] = {"maxProperties": filters.MAX_NODES - 1}
"""What /openapi.json adds on ``filter``, an object (its grammar is in its description)."""
