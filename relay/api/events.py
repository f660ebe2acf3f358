"""``/v2/events``: the retained events (``RELAY_STREAM_RETENTION``), searched, and where each went.

An event's ``id`` is stable and unique across partitions (``evt_<callback digest>_<index>``,
as in ``webhook-id``). Each event lists, per webhook, its attempts and its state
(``relay.event_trail``); the outcomes come from the event's own attempt log.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from relay.api import http
from relay.api.deliveries import DeliveryAttempt
from relay.api.recovery_schemas import Ms, ordered
from relay.api.registry import ERROR_RESPONSES, WEBHOOK_STORE, Operation, PathParam, Response
from relay.api.schemas import MAX_LIMIT, ErrorResponse, FieldsQuery, PageQuery
from relay.catalog import event_key
from relay.errors import ApiError
from relay.event_trail import entry_of, trail
from relay.events import EVENT_ID, StreamEvent, resource_id
from relay.store.attempts import Attempts
from relay.store.event_log import EventLog, Found
from relay.webhooks.json_types import Int64
from relay.webhooks.query import WebhookQuery

_WEBHOOK = "Show only this webhook's outcome (not-matched when the event did not reach it)."


class EventQuery(FieldsQuery):
    webhookId: Int64 | None = Field(None, description=_WEBHOOK)


class EventsQuery(PageQuery):
    resourceId: Int64 | None = Field(None, description="CallFire's resource id (resource.id), exact.")
    resourceType: str | None = Field(None, description="A resource name, e.g. OutboundCall (exact).")
    eventType: str | None = Field(None, description="An event name, matched case-insensitively.")
    since: Ms | None = Field(None, description="Only events received from this time on (unix ms).")
    until: Ms | None = Field(None, description="Only events received up to this time (unix ms).")
    webhookId: Int64 | None = Field(None, description=_WEBHOOK)

    _until_after_since = field_validator("until")(ordered)


class EventDelivery(BaseModel):
    webhookId: Int64
    deliveryId: str = Field(description="The webhook-id header of its delivery to this webhook.")
    state: Literal["delivered", "retrying", "dead-letter", "not-matched", "pending"]
    retryAt: Int64 | None = Field(description="State retrying: when the next attempt is due, unix ms.")
    attempts: list[DeliveryAttempt] = Field(description="Newest first.")


class EventOut(BaseModel):
    id: str
    resourceType: str
    eventType: str
    resourceId: str | None = Field(description="resource.id as CallFire sent it, as a string.")
    receivedAt: Int64 = Field(description="When the relay received it, unix ms.")
    timestamp: Int64 | None = Field(description="The event's own timestamp, unix ms.")
    callfireWebhookId: Int64 | None = Field(description="The CallFire webhook that sent it.")
    event: dict[str, Any] = Field(description="The event, as CallFire sent it.")
    deliveries: list[EventDelivery]


class EventPage(BaseModel):
    items: list[EventOut]
    limit: int = Field(json_schema_extra={"format": "int32"})
    offset: int = Field(json_schema_extra={"format": "int32"})
    totalCount: int = Field(json_schema_extra={"format": "int32"})


def chooser(params: EventsQuery) -> Any:
    """The search's filter on one event. Pure. The resource id is compared as the JSON integer's
    text, so ids past 2**53 match exactly."""
    wanted_id = None if params.resourceId is None else str(params.resourceId)
    wanted_key = None if params.eventType is None else event_key(params.eventType)

    def wanted(event: StreamEvent) -> bool:
        return (
            (params.resourceType is None or event.resource == params.resourceType)
            and (wanted_key is None or event.event_key == wanted_key)
            and (wanted_id is None or resource_id(event.json) == wanted_id)
        )

    return wanted


def event_out(found: Found, deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    event = found.event
    return {
        "id": event.id,
        "resourceType": event.resource,
        "eventType": event.event,
        "resourceId": resource_id(event.json),
        "receivedAt": event.received_at,
        "timestamp": event.timestamp,
        "callfireWebhookId": event.cf_webhook_id,
        "event": orjson.Fragment(event.json),
        "deliveries": deliveries,
    }


async def described(request: web.Request, page: list[Found], webhook_id: int | None) -> list[dict[str, Any]]:
    """Each event with where it went: per webhook it matched or was tried for, then per webhook
    there is now (the first ``MAX_LIMIT`` by id), or only ``webhook_id``'s."""
    store = request.app[WEBHOOK_STORE]
    logs = await Attempts(redis=store.redis, keys=store.keys, kept=0).of_events([f.event.id for f in page])
    if webhook_id is not None:
        others = [webhook_id]
    else:
        _, hooks = await store.find(WebhookQuery(limit=MAX_LIMIT)) if page else (0, [])
        others = [w.id for w in hooks]
    out = []
    for found, log in zip(page, logs, strict=True):
        deliveries = trail(found.event, log, others)
        if webhook_id is not None:
            deliveries = [d for d in deliveries if d["webhookId"] == webhook_id]
        out.append(event_out(found, deliveries))
    return out


async def find_events(request: web.Request) -> web.Response:
    params = http.query(request, EventsQuery)
    store = request.app[WEBHOOK_STORE]
    found = await EventLog(store.redis, store.keys).search(params.since, params.until, chooser(params))
    limit = params.page_limit
    items = await described(request, found[params.offset : params.offset + limit], params.webhookId)
    data = {"items": items, "limit": limit, "offset": params.offset, "totalCount": len(found)}
    return http.json_response(data, fields=params.fields)


async def get_event(request: web.Request) -> web.Response:
    event_id = request.match_info["id"]
    if not EVENT_ID.fullmatch(event_id):
        raise ApiError(400, "id: must be an event id such as evt_<32 hex digits>_<index>")
    params = http.query(request, EventQuery)
    store = request.app[WEBHOOK_STORE]
    (log,) = await Attempts(redis=store.redis, keys=store.keys, kept=0).of_events([event_id])
    found = await EventLog(store.redis, store.keys).find(event_id, entry_of(log))
    if found is None:
        raise ApiError(404, f"no retained event with id {event_id}")
    (item,) = await described(request, [found], params.webhookId)
    return http.json_response(item, fields=params.fields)


_ID_SCHEMA = {"type": "string", "pattern": EVENT_ID.pattern.join("^$")}
ID = PathParam("id", _ID_SCHEMA, "An event's id, e.g. evt_<32 hex digits>_0")
_ERR = ERROR_RESPONSES
_TAGS = ("events",)

OPERATIONS = (
    Operation(
        method="GET",
        path="/v2/events",
        operation_id="findEvents",
        summary="Find retained events, newest first, and where each went",
        handler=find_events,
        responses={200: Response(description="a page of events", model=EventPage), **_ERR},
        query=EventsQuery,
        tags=_TAGS,
    ),
    Operation(
        method="GET",
        path="/v2/events/{id}",
        operation_id="getEvent",
        summary="A retained event and where it went",
        handler=get_event,
        responses={
            200: Response(description="the event", model=EventOut),
            **_ERR,
            404: Response(description="no such event", model=ErrorResponse),
        },
        query=EventQuery,
        path_params=(ID,),
        tags=_TAGS,
    ),
)
