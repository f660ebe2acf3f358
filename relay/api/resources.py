"""``/v2/webhooks/resources``: the resources a webhook can watch and their events (``relay.catalog``)."""

from __future__ import annotations

from aiohttp import web

from relay.api import http
from relay.api.registry import ERROR_RESPONSES, Operation, PathParam, Response
from relay.api.schemas import ErrorResponse, FieldsQuery, ItemListWebhookResource, WebhookResource
from relay.catalog import RESOURCES
from relay.errors import ApiError


def _resource(name: str) -> dict[str, object]:
    return {"resource": name, "supportedEvents": list(RESOURCES[name])}


async def find_resources(request: web.Request) -> web.Response:
    params = http.query(request, FieldsQuery)
    return http.json_response({"items": [_resource(name) for name in RESOURCES]}, fields=params.fields)


async def get_resource(request: web.Request) -> web.Response:
    params = http.query(request, FieldsQuery)
    name = request.match_info["resource"]
    if name not in RESOURCES:
        raise ApiError(404, f"no webhook resource {name!r}; GET /v2/webhooks/resources lists them")
    return http.json_response(_resource(name), fields=params.fields)


_ERR = ERROR_RESPONSES

OPERATIONS = (
    Operation(
        method="GET",
        path="/v2/webhooks/resources",
        operation_id="findWebhookResources",
        summary="Find webhook resources",
        handler=find_resources,
        responses={
            200: Response(description="every resource and its events", model=ItemListWebhookResource),
            **_ERR,
        },
        query=FieldsQuery,
    ),
    Operation(
        method="GET",
        path="/v2/webhooks/resources/{resource}",
        operation_id="getWebhookResource",
        summary="Find specific webhook resource",
        handler=get_resource,
        responses={
            200: Response(description="the resource and its events", model=WebhookResource),
            **_ERR,
            404: Response(description="no such resource", model=ErrorResponse),
        },
        query=FieldsQuery,
        path_params=(PathParam("resource", {"type": "string"}, "A name of a webhook resource"),),
    ),
)
