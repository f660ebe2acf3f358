"""CallFire's own Swagger is the contract: real responses validate against its definitions (as
the relay serves them: CallFire's, plus the relay's extension fields on Webhook described).

Objects are checked strictly (no property the Swagger does not define), so a client generated
from it, with response validation on, accepts what the relay answers.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from relay.api import operations
from relay.api.swagger import callfire_description, relay_description
from tests.api_client import AUTH, create


@pytest.fixture(scope="module")
def definitions() -> dict[str, Any]:
    return dict(relay_description(operations())["definitions"])


def strict(defs: dict[str, Any]) -> dict[str, Any]:
    """Every plain object definition refuses properties it does not list."""
    out = copy.deepcopy(defs)
    for schema in out.values():
        if schema.get("type") == "object" and "properties" in schema:
            schema["additionalProperties"] = False
    return out


def check(defs: dict[str, Any], name: str, instance: Any) -> None:
    schema = {"$ref": f"#/definitions/{name}", "definitions": strict(defs)}
    jsonschema.Draft4Validator(schema).validate(instance)


def test_swagger_operations_and_status_codes(definitions: dict[str, Any]) -> None:
    """The contract's operations are the ones served, with the success codes the relay answers."""
    paths = callfire_description()["paths"]
    declared = {
        (path, method, code)
        for path, ops in paths.items()
        for method, op in ops.items()
        for code in op["responses"]
        if code.startswith("2")
    }
    assert declared == {
        ("/webhooks", "get", "200"),
        ("/webhooks", "post", "201"),
        ("/webhooks/resources", "get", "200"),
        ("/webhooks/resources/{resource}", "get", "200"),
        ("/webhooks/{id}", "get", "200"),
    }  # PUT (200) and DELETE (204) declare no success response: callfire.md section 5


async def test_create_answers_a_resource_id(client: Any, definitions: dict[str, Any]) -> None:
    """POST /v2/webhooks answers a ResourceId."""
    resp = await client.post(
        "/v2/webhooks",
        json={"resource": "OutboundCall", "events": ["Finished"], "callback": "https://x.test/"},
        headers=AUTH,
    )
    assert resp.status == 201
    check(definitions, "ResourceId", await resp.json())


async def test_webhook_and_page_validate(client: Any, definitions: dict[str, Any]) -> None:
    """A full webhook, alone and in a page, is a valid Webhook / WebhookPage."""
    webhook_id = await create(
        client,
        expiresAt=2**42,
        fields="webhookId",
        singleUse=True,
        nonStrictSsl=True,
        filter={"resource.finalCallResult": {"$in": ["LA", "AM"]}},
        rateLimit=5,
    )
    one = await (await client.get(f"/v2/webhooks/{webhook_id}", headers=AUTH)).json()
    check(definitions, "Webhook", one)
    assert set(one) == set(definitions["Webhook"]["properties"]) - {"secret"}
    page = await (await client.get("/v2/webhooks", headers=AUTH)).json()
    check(definitions, "WebhookPage", page)
    check(definitions, "Page", {**page, "items": []})
    for item in page["items"]:
        check(definitions, "Webhook", item)


async def test_resources_validate(client: Any, definitions: dict[str, Any]) -> None:
    """The resource list and one resource are ItemListWebhookResource and WebhookResource."""
    check(
        definitions,
        "ItemListWebhookResource",
        await (await client.get("/v2/webhooks/resources", headers=AUTH)).json(),
    )
    one = await (await client.get("/v2/webhooks/resources/OutboundCall", headers=AUTH)).json()
    check(definitions, "WebhookResource", one)


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/v2/webhooks/424242", AUTH, 404),
        ("GET", "/v2/webhooks?limit=-1", AUTH, 400),
        ("GET", "/v2/webhooks", {}, 401),
        ("POST", "/v2/webhooks", AUTH, 400),
    ],
)
async def test_errors_validate(
    client: Any, definitions: dict[str, Any], method: str, path: str, headers: dict[str, str], status: int
) -> None:
    """Error bodies are CallFire's ErrorResponse."""
    resp = await client.request(method, path, headers=headers, json={})
    assert resp.status == status
    check(definitions, "ErrorResponse", await resp.json())
