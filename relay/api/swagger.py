"""``GET /v2/api-docs/swagger.json``: CallFire's own Swagger 2.0 description of ``/v2/webhooks``,
served where CallFire serves it, so CallFire's clients (which load it from that path) work unchanged.

The source is CallFire's published description, verbatim (``data/callfire-webhooks.swagger.yaml``).
``relay_description`` changes it, once at start, in two ways:

- every response the relay declares (``relay.api.registry``) that CallFire's description lacks is
  added: above all updateWebhook's 200 and deleteWebhook's 204, without which a validating client
  raises on success;
- the relay's extension fields on ``Webhook`` (``EXTENSIONS``) are described.

``located`` then sets ``host``, ``basePath`` and ``schemes`` to the relay's own: ``RELAY_API_URL``
when set (behind a proxy; with or without its ``/v2``), else those of the request. Pure but for
reading the packaged file.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import orjson
import yaml
from aiohttp import web

from relay.api.registry import Handler, Operation, Response
from relay.webhooks import filters
from relay.webhooks.json_types import RATE_LIMIT_MAX
from relay.webhooks.model import WebhookBody

PATH = "/v2/api-docs/swagger.json"
_SOURCE = "data/callfire-webhooks.swagger.yaml"
_DEFINITIONS = "#/definitions/"

EXTENSIONS: dict[str, dict[str, Any]] = {
    "filter": {"type": "object", "maxProperties": filters.MAX_NODES - 1},
    "rateLimit": {"type": "integer", "format": "int32", "minimum": 1, "maximum": RATE_LIMIT_MAX},
}
"""The Swagger 2.0 schema of each field the relay adds to CallFire's ``Webhook``, by its JSON name.
Its description is taken from ``WebhookBody``. A new extension field is one entry here."""


def callfire_description() -> dict[str, Any]:
    """CallFire's published description, as stored in the package (machines may be offline)."""
    text = resources.files("relay.api").joinpath(_SOURCE).read_text(encoding="utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def relay_description(operations: Iterable[Operation]) -> dict[str, Any]:
    """CallFire's description with the relay's responses and extension fields; no host yet."""
    doc = callfire_description()
    by_id = {op.operation_id: op for op in operations}
    for methods in doc["paths"].values():
        for spec in methods.values():
            op = by_id[spec["operationId"]]  # a CallFire operation the relay lacks is a bug
            spec["responses"] = _with_responses(spec["responses"], op, doc["definitions"])
    webhook = doc["definitions"]["Webhook"]
    webhook["properties"] = described(webhook["properties"], EXTENSIONS, _request_docs())
    return doc


def _with_responses(declared: dict[str, Any], op: Operation, definitions: dict[str, Any]) -> dict[str, Any]:
    """CallFire's responses, plus the relay's own that CallFire does not declare, by status."""
    merged = dict(declared)
    for status, response in op.responses.items():
        if str(status) not in merged:
            merged[str(status)] = _response(response, definitions)
    return dict(sorted(merged.items()))


def _response(response: Response, definitions: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": response.description}
    if response.schema is not None:
        raise ValueError(f"a raw schema has no Swagger 2.0 counterpart: {response.description!r}")
    if response.model is not None:
        name = response.model.__name__
        if name not in definitions:
            raise ValueError(f"CallFire's description has no definition {name!r}")
        out["schema"] = {"$ref": _DEFINITIONS + name}
    return out


def described(
    properties: dict[str, Any], extensions: dict[str, dict[str, Any]], docs: dict[str, str]
) -> dict[str, Any]:
    """``properties`` with each extension field added, its description from ``docs`` if any."""
    out = dict(properties)
    for name, schema in extensions.items():
        doc = {"description": docs[name]} if name in docs else {}
        out[name] = {**doc, **schema}
    return out


def _request_docs() -> dict[str, str]:
    props = WebhookBody.model_json_schema(by_alias=True)["properties"]
    return {name: prop["description"] for name, prop in props.items() if "description" in prop}


def located(doc: dict[str, Any], *, scheme: str, host: str, prefix: str = "") -> dict[str, Any]:
    """``doc`` as served from ``scheme://host`` with its paths under ``prefix`` (no trailing /)."""
    return {**doc, "schemes": [scheme], "host": host, "basePath": prefix + doc["basePath"]}


def api_prefix(path: str, base_path: str) -> str:
    """What comes before ``base_path`` (``/v2``) in the paths of an API at ``path``: RELAY_API_URL
    may name the relay (``https://relay.example.com``, ``.../callfire``) or its API itself
    (``.../v2``, ``.../callfire/v2/``), and either gives the same paths, never ``/v2/v2``. Pure."""
    prefix = path.rstrip("/")
    return prefix.removesuffix(base_path) if prefix.endswith(base_path) else prefix


def swagger_handler(operations: Iterable[Operation], api_url: str | None) -> Handler:
    """A handler serving the document: located at ``api_url`` (rendered once), else at the
    request's own scheme and ``Host``."""
    doc = relay_description(operations)
    if api_url is not None:
        url = urlsplit(api_url)
        prefix = api_prefix(url.path, doc["basePath"])
        body = orjson.dumps(located(doc, scheme=url.scheme, host=url.netloc, prefix=prefix))

        async def fixed(_: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        return fixed

    async def per_request(request: web.Request) -> web.Response:
        here = located(doc, scheme=request.scheme, host=request.host)
        return web.Response(body=orjson.dumps(here), content_type="application/json")

    return per_request
