"""CallFire's own Python client (``callfire-api-client-python``), unchanged, against a running relay
with response validation on. Only what docs/api.md shows changes: the subclass below points
``swagger_url()`` at the relay and sends Basic auth to the relay's host."""

from __future__ import annotations

import uuid
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

with warnings.catch_warnings():  # bravado still uses jsonschema's deprecated RefResolver
    warnings.simplefilter("ignore", DeprecationWarning)
    from bravado.exception import HTTPBadRequest, HTTPError, HTTPNotFound, HTTPUnauthorized
    from callfire.client import CallfireClient

from tests.api_client import CREDENTIALS
from tests.processes import RelayProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # bravado's jsonschema use, as above
]


class RelayClient(CallfireClient):  # type: ignore[misc]
    """docs/api.md's subclass, with type hints."""

    def __init__(self, base_url: str, login: str, password: str, config: dict[str, Any] | None = None):
        self.base_url = base_url.rstrip("/")
        super().__init__(login, password, config)
        self.http_client.set_basic_auth(urlsplit(self.base_url).netloc, login, password)

    def swagger_url(self) -> str:
        return self.base_url + "/v2/api-docs/swagger.json"


def connect(relay: RelayProcess, password: str = CREDENTIALS[1]) -> Any:
    return RelayClient(relay.base_url, CREDENTIALS[0], password, {"validate_responses": True})


@pytest.fixture(scope="module")
def client(relay_api: RelayProcess) -> Any:
    return connect(relay_api)


@dataclass(frozen=True)
class Pair:
    """Two webhooks that differ in every field ``findWebhooks`` filters on."""

    wanted: Any
    other: Any


@pytest.fixture(scope="module")
def pair(client: Any) -> Pair:
    tag = uuid.uuid4().hex[:8]
    ids = [
        client.webhooks.createWebhook(body=body).response().result.id
        for body in (
            {
                "name": f"wanted-{tag}",
                "resource": "CallBroadcast",
                "events": ["started"],
                "callback": f"https://wanted.example/{tag}",
                "enabled": True,
            },
            {
                "name": f"other-{tag}",
                "resource": "OutboundCall",
                "events": ["finished"],
                "callback": f"https://other.example/{tag}",
                "enabled": False,
            },
        )
    ]
    wanted, other = (client.webhooks.getWebhook(id=i).response().result for i in ids)
    return Pair(wanted, other)


def new_webhook(client: Any, **fields: Any) -> int:
    body = {"resource": "OutboundCall", "events": ["Finished"], "callback": "https://x.example/", **fields}
    webhook_id: int = client.webhooks.createWebhook(body=body).response().result.id
    return webhook_id


def test_create_then_get_returns_callfires_webhook(client: Any) -> None:
    """A created webhook reads back as CallFire's Webhook model, its events canonical, no secret."""
    webhook_id = new_webhook(client, name="created", events=["FINISHED"], secret="s3cret")
    got = client.webhooks.getWebhook(id=webhook_id).response()
    assert type(got.result).__name__ == "Webhook"
    assert (got.result.id, got.result.name, got.result.events) == (webhook_id, "created", ["Finished"])
    assert "secret" not in got.incoming_response.json()


@pytest.mark.parametrize("name", ["name", "resource", "event", "callback", "enabled"])
def test_find_by_each_filter(client: Any, pair: Pair, name: str) -> None:
    """findWebhooks by each of its filters finds the webhook that has the value, not the other."""
    value = pair.wanted.events[0].lower() if name == "event" else getattr(pair.wanted, name)
    page = client.webhooks.findWebhooks(**{name: value}, limit=1000).response().result
    assert type(page).__name__ == "WebhookPage"
    ids = {item.id for item in page.items}
    assert pair.wanted.id in ids and pair.other.id not in ids


def test_update_answers_200_without_raising(client: Any) -> None:
    """updateWebhook's 200 is declared, so the validating client returns instead of raising."""
    webhook_id = new_webhook(client, name="before")
    updated = client.webhooks.updateWebhook(id=webhook_id, body={"name": "after"}).response()
    assert (updated.incoming_response.status_code, updated.result) == (200, None)
    assert client.webhooks.getWebhook(id=webhook_id).response().result.name == "after"


def test_delete_answers_204_without_raising(client: Any) -> None:
    """deleteWebhook's 204 is declared, so the validating client returns; the webhook is gone."""
    webhook_id = new_webhook(client)
    deleted = client.webhooks.deleteWebhook(id=webhook_id).response()
    assert (deleted.incoming_response.status_code, deleted.result) == (204, None)
    with pytest.raises(HTTPNotFound):
        client.webhooks.getWebhook(id=webhook_id).response()


def test_resources_list_and_one_resource(client: Any) -> None:
    """findWebhookResources and getWebhookResource answer CallFire's models."""
    found = client.webhooks.findWebhookResources().response().result
    assert type(found).__name__ == "ItemListWebhookResource"
    assert ("LowBalance", ["Finished", "Failed"]) in [(r.resource, r.supportedEvents) for r in found.items]
    one = client.webhooks.getWebhookResource(resource="OutboundCall").response().result
    assert (type(one).__name__, one.resource, one.supportedEvents) == (
        "WebhookResource",
        "OutboundCall",
        ["Finished"],
    )


def error_of(call: Any, kind: type[HTTPError]) -> Any:
    """The ErrorResponse a call raises as bravado's ``kind``."""
    with pytest.raises(kind) as raised:
        call.response()
    result = raised.value.swagger_result
    assert type(result).__name__ == "ErrorResponse"
    return result


def test_bad_body_is_http_bad_request_with_an_error_response(client: Any) -> None:
    """400 raises HTTPBadRequest carrying CallFire's ErrorResponse, naming the field at fault."""
    body = {"resource": "OutboundCall", "events": ["Started"], "callback": "https://x.example/"}
    error = error_of(client.webhooks.createWebhook(body=body), HTTPBadRequest)
    assert error.httpStatusCode == 400 and error.message.startswith("events: ")


def test_wrong_password_is_http_unauthorized_with_an_error_response(relay_api: RelayProcess) -> None:
    """401 raises HTTPUnauthorized carrying CallFire's ErrorResponse (the description needs none)."""
    intruder = connect(relay_api, password="wrong")
    error = error_of(intruder.webhooks.findWebhooks(), HTTPUnauthorized)
    assert error.httpStatusCode == 401


def test_unknown_id_is_http_not_found_with_an_error_response(client: Any) -> None:
    """404 raises HTTPNotFound carrying CallFire's ErrorResponse."""
    error = error_of(client.webhooks.getWebhook(id=2**62), HTTPNotFound)
    assert error.httpStatusCode == 404
