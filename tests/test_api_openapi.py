"""GET /openapi.json: generated from the handlers' models, covering every route the app serves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from relay import selector
from relay.app import admin_app, create_app
from relay.embedded import free_port
from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.api_client import AUTH

CALLFIRE_OPERATIONS = {
    ("GET", "/v2/webhooks"),
    ("POST", "/v2/webhooks"),
    ("GET", "/v2/webhooks/{id}"),
    ("PUT", "/v2/webhooks/{id}"),
    ("DELETE", "/v2/webhooks/{id}"),
    ("GET", "/v2/webhooks/resources"),
    ("GET", "/v2/webhooks/resources/{resource}"),
}


async def test_document_is_open_and_openapi_3(client: Any) -> None:
    """The document needs no credentials and is OpenAPI 3.1 with HTTP Basic declared."""
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    assert doc["components"]["securitySchemes"]["basicAuth"] == {"type": "http", "scheme": "basic"}


async def test_every_served_route_is_documented(client: Any) -> None:
    """Each method and path the app routes (but HEAD, the 405 fallbacks and the console's pages,
    which are for people, not clients) is in the document."""
    doc = await (await client.get("/openapi.json")).json()
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    app: web.Application = client.server.app
    served = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None
        and r.method not in ("HEAD", "*")
        and not r.resource.canonical.startswith("/console")
    }
    assert served <= documented
    assert documented >= CALLFIRE_OPERATIONS


def routed(app: web.Application) -> set[tuple[str, str]]:
    """Each method and path ``app`` routes, but HEAD, the 405 fallbacks and the console's pages."""
    return {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None
        and r.method not in ("HEAD", "*")
        and not r.resource.canonical.startswith("/console")
    }


async def test_the_admin_port_documents_only_what_it_serves(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """With RELAY_ADMIN_PORT, the admin surface's /openapi.json lists exactly its own routes: not
    the callbacks and probes, which answer on RELAY_PORT only."""
    app = create_app(make_settings(admin_port=free_port()), redis)
    admin = admin_app(app)
    assert admin is not app
    async with TestClient(TestServer(admin)) as client:
        doc = await (await client.get("/openapi.json")).json()
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert documented == routed(admin)
    assert not {"/callbacks/callfire", "/healthz", "/readyz"} & set(doc["paths"])
    assert {"/metrics", "/openapi.json"} <= set(doc["paths"])


async def test_operation_ids_are_callfires(client: Any) -> None:
    """Operation ids match CallFire's, so generated clients keep their method names."""
    doc = await (await client.get("/openapi.json")).json()
    ids = {op["operationId"] for ops in doc["paths"].values() for op in ops.values()}
    assert {
        "findWebhooks",
        "createWebhook",
        "getWebhook",
        "updateWebhook",
        "deleteWebhook",
        "findWebhookResources",
        "getWebhookResource",
    } <= ids


async def test_fields_parameter_declares_the_selector_grammar(client: Any) -> None:
    """Every `fields` parameter carries the selector module's own pattern."""
    doc = await (await client.get("/openapi.json")).json()
    params = [
        p
        for ops in doc["paths"].values()
        for op in ops.values()
        for p in op.get("parameters", ())
        if p["name"] == "fields"
    ]
    assert len(params) >= 4
    assert all(p["schema"]["pattern"] == selector.PATTERN for p in params)


async def test_webhook_schema_has_no_secret_and_no_required(client: Any) -> None:
    """The returned Webhook never has a secret; `fields` may drop any name, so none is required."""
    schemas = (await (await client.get("/openapi.json")).json())["components"]["schemas"]
    assert "secret" not in schemas["WebhookOut"]["properties"]
    assert "required" not in schemas["WebhookOut"] and "required" not in schemas["WebhookPage"]
    assert "secret" in schemas["WebhookBody"]["properties"]


async def test_undeclared_method_is_405_with_allow(client: Any) -> None:
    """A method a path does not have gets 405 and Allow, even where /{id} would match the path."""
    resp = await client.delete("/v2/webhooks/resources", headers=AUTH)
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET"
    assert (await client.patch("/v2/webhooks/1", headers=AUTH)).status == 405
