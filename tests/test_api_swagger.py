"""GET /v2/api-docs/swagger.json: CallFire's Swagger 2.0 description, located at the relay, with the
success answers and extension fields CallFire's lacks, in agreement with /openapi.json."""

from __future__ import annotations

import fnmatch
import tomllib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # swagger-spec-validator (bravado's) still uses jsonschema's RefResolver
    warnings.simplefilter("ignore", DeprecationWarning)
    from swagger_spec_validator.validator20 import validate_spec

from relay.api import swagger
from relay.api.swagger import EXTENSIONS, PATH, callfire_description, described
from relay.webhooks.model import WebhookBody, WebhookOut

ROOT = Path(__file__).resolve().parent.parent
LOCATION = ("host", "basePath", "schemes")


async def served(client: Any, **headers: str) -> dict[str, Any]:
    resp = await client.get(PATH, headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/json"
    doc: dict[str, Any] = await resp.json()
    return doc


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the validator's RefResolver, as above
async def test_served_without_credentials_as_valid_swagger_2(client: Any) -> None:
    """No Authorization needed (as /openapi.json), and the document is valid Swagger 2.0."""
    doc = await served(client)
    assert doc["swagger"] == "2.0"
    validate_spec(doc)


async def test_located_at_the_request(client: Any) -> None:
    """Unset RELAY_API_URL: host and scheme are the request's, the paths under /v2."""
    doc = await served(client)
    assert (doc["host"], doc["basePath"], doc["schemes"]) == (f"127.0.0.1:{client.port}", "/v2", ["http"])
    forwarded = await served(client, Host="relay.example:8443")
    assert forwarded["host"] == "relay.example:8443"


async def test_located_at_relay_api_url(make_client: Callable[..., Any], make_settings: Any) -> None:
    """RELAY_API_URL gives host, basePath (its path, then /v2) and scheme, whatever the request."""
    client = await make_client(make_settings(api_url="https://relay.example.com/callfire/"))
    doc = await served(client, Host="elsewhere.example")
    assert (doc["host"], doc["basePath"], doc["schemes"]) == ("relay.example.com", "/callfire/v2", ["https"])


@pytest.mark.parametrize(
    ("api_url", "base_path"),
    [
        ("https://relay.example.com", "/v2"),
        ("https://relay.example.com/", "/v2"),
        ("https://relay.example.com/v2", "/v2"),
        ("https://relay.example.com/v2/", "/v2"),
        ("https://relay.example.com/callfire/v2", "/callfire/v2"),
        ("https://relay.example.com/v2x", "/v2x/v2"),
    ],
)
async def test_relay_api_url_may_name_the_api_with_or_without_v2(
    make_client: Callable[..., Any], make_settings: Any, api_url: str, base_path: str
) -> None:
    """RELAY_API_URL ending in /v2 names the same API as without it: the paths are never /v2/v2."""
    client = await make_client(make_settings(api_url=api_url))
    assert (await served(client))["basePath"] == base_path


async def test_update_and_delete_declare_their_success(client: Any) -> None:
    """updateWebhook declares 200 and deleteWebhook 204, both without a body."""
    one = (await served(client))["paths"]["/webhooks/{id}"]
    assert "schema" not in one["put"]["responses"]["200"]
    assert "schema" not in one["delete"]["responses"]["204"]


async def test_the_rest_is_callfires_verbatim(client: Any) -> None:
    """Taking away the location, the added responses and the extension fields gives CallFire's."""
    doc, original = await served(client), callfire_description()
    for methods in doc["paths"].values():
        for op in methods.values():
            op["responses"] = {k: v for k, v in op["responses"].items() if k in _callfire_statuses(op)}
    for name in EXTENSIONS:
        del doc["definitions"]["Webhook"]["properties"][name]
    assert {k: v for k, v in doc.items() if k not in LOCATION} == {
        k: v for k, v in original.items() if k not in LOCATION
    }


def _callfire_statuses(op: dict[str, Any]) -> set[str]:
    callfire = callfire_description()
    return {
        status
        for methods in callfire["paths"].values()
        for theirs in methods.values()
        if theirs["operationId"] == op["operationId"]
        for status in theirs["responses"]
    }


async def test_relay_responses_added_name_callfires_error(client: Any) -> None:
    """Errors the relay declares and CallFire does not (413, 503) point at CallFire's ErrorResponse."""
    ops = (await served(client))["paths"]
    error = {"$ref": "#/definitions/ErrorResponse"}
    assert ops["/webhooks"]["post"]["responses"]["413"]["schema"] == error
    assert all(op["responses"]["503"]["schema"] == error for m in ops.values() for op in m.values())


def test_extension_fields_are_described_with_the_models_text() -> None:
    """An extension field is added to Webhook's properties, its description the request model's."""
    props = described(
        {"id": {"type": "integer"}}, {"rateLimit": {"type": "integer"}}, {"rateLimit": "Per s."}
    )
    assert props == {"id": {"type": "integer"}, "rateLimit": {"description": "Per s.", "type": "integer"}}


def test_every_extension_field_of_the_models_is_described() -> None:
    """Each field the relay's Webhook has beyond CallFire's is one entry of EXTENSIONS, and back."""
    callfire = set(callfire_description()["definitions"]["Webhook"]["properties"])
    models = set(WebhookOut.model_json_schema(by_alias=True)["properties"])
    models |= set(WebhookBody.model_json_schema(by_alias=True)["properties"])
    extensions = models - callfire
    assert set(EXTENSIONS) == extensions, (
        f"relay.api.swagger.EXTENSIONS must give the Swagger 2.0 schema of exactly {sorted(extensions)}"
    )


async def test_agrees_with_openapi_on_the_webhooks_operations(client: Any) -> None:
    """Each Swagger operation is in /openapi.json at the same path and method, with the same
    parameters (place, name, required, type, format) and the same success statuses."""
    doc = await served(client)
    openapi = await (await client.get("/openapi.json")).json()
    compared = 0
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            theirs = openapi["paths"][doc["basePath"] + path][method]
            assert theirs["operationId"] == op["operationId"]
            assert _swagger_params(op) == _openapi_params(theirs), op["operationId"]
            assert _successes(op) == _successes(theirs), op["operationId"]
            compared += 1
    assert compared == 7


def _swagger_params(op: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {
        (p["in"], p["name"], p["required"], p.get("type"), p.get("format")) for p in op.get("parameters", ())
    }


def _openapi_params(op: dict[str, Any]) -> set[tuple[Any, ...]]:
    params = {
        (p["in"], p["name"], p["required"], p["schema"].get("type"), p["schema"].get("format"))
        for p in op.get("parameters", ())
    }
    if "requestBody" in op:
        params.add(("body", "body", op["requestBody"]["required"], None, None))
    return params


def _successes(op: dict[str, Any]) -> set[str]:
    return {status for status in op["responses"] if status.startswith("2")}


def test_the_description_ships_in_the_package() -> None:
    """pyproject.toml's package data takes the packaged description into the wheel and image."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    source = Path(swagger.__file__).parent / "data" / "callfire-webhooks.swagger.yaml"
    assert source.is_file()
    assert any(fnmatch.fnmatch("data/callfire-webhooks.swagger.yaml", g) for g in data["relay.api"])
