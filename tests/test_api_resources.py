"""GET /v2/webhooks/resources[/{resource}]: the catalogue, CallFire's shape."""

from __future__ import annotations

from typing import Any

from relay.catalog import RESOURCES
from tests.api_client import get_json


async def test_all_resources(client: Any) -> None:
    """Every resource of the catalogue, with its events as the catalogue spells them."""
    body = await get_json(client, "/v2/webhooks/resources")
    assert body == {"items": [{"resource": r, "supportedEvents": list(e)} for r, e in RESOURCES.items()]}


async def test_one_resource(client: Any) -> None:
    """One resource by name."""
    body = await get_json(client, "/v2/webhooks/resources/ContactList")
    assert body == {"resource": "ContactList", "supportedEvents": ["ValidationFinished", "ValidationFailed"]}


async def test_unknown_resource_is_404(client: Any) -> None:
    """An unknown resource gets 404 with CallFire's error body."""
    body = await get_json(client, "/v2/webhooks/resources/Nope", status=404)
    assert body["httpStatusCode"] == 404


async def test_resources_with_fields(client: Any) -> None:
    """fields=items(resource) keeps only the names."""
    body = await get_json(client, "/v2/webhooks/resources", fields="items(resource)")
    assert body == {"items": [{"resource": r} for r in RESOURCES]}


async def test_one_resource_with_fields(client: Any) -> None:
    """fields applies to a single resource too."""
    assert await get_json(client, "/v2/webhooks/resources/LowBalance", fields="supportedEvents") == {
        "supportedEvents": ["Finished", "Failed"]
    }
