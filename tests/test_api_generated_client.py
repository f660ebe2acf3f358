"""A client generated from CallFire's published Swagger file, unchanged but for its host, with
request and response validation on, works against the relay (CallFire's contract, end to end),
but for the two success answers that file does not declare (the reason for
``/v2/api-docs/swagger.json``, which tests/test_api_callfire_client.py uses)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

with warnings.catch_warnings():  # bravado still uses jsonschema's deprecated RefResolver
    warnings.simplefilter("ignore", DeprecationWarning)
    from bravado.client import SwaggerClient
    from bravado.exception import HTTPError, HTTPNotFound
    from bravado.requests_client import RequestsClient

from relay.api.swagger import callfire_description
from tests.api_client import CREDENTIALS
from tests.processes import RelayProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # bravado's jsonschema use, as above
]

CONFIG = {"validate_responses": True, "validate_requests": True, "use_models": False}


@pytest.fixture
def callfire(relay_api: RelayProcess) -> Iterator[Any]:
    spec = callfire_description()
    spec["host"], spec["schemes"] = f"127.0.0.1:{relay_api.port}", ["http"]  # the only change a user makes
    http = RequestsClient()
    http.set_basic_auth(f"127.0.0.1:{relay_api.port}", *CREDENTIALS)
    yield SwaggerClient.from_spec(spec, http_client=http, config=CONFIG).webhooks


def test_generated_client_runs_every_operation(callfire: Any) -> None:
    """create, find, get, update, resources, delete: each validated against CallFire's schemas."""
    body = {
        "name": "generated",
        "resource": "CallBroadcast",
        "events": ["started", "FINISHED"],
        "callback": "https://example.com/hook",
        "secret": "s3cret",
    }
    created = callfire.createWebhook(body=body).response().result
    webhook_id = created["id"]
    found = callfire.findWebhooks(resource="CallBroadcast", limit=10).response().result
    assert [item["id"] for item in found["items"]] == [webhook_id]
    got = callfire.getWebhook(id=webhook_id).response()
    assert got.result["events"] == ["Started", "Finished"]
    assert "secret" not in got.incoming_response.json()  # write-only
    partial = callfire.getWebhook(id=webhook_id, fields="id,name").response()
    assert partial.incoming_response.json() == {"id": webhook_id, "name": "generated"}
    # CallFire's file declares no success response for PUT and DELETE (callfire.md, section 5), so a
    # validating client raises on CallFire's own 200 and 204; the relay answers exactly those.
    with pytest.raises(HTTPError) as update:
        callfire.updateWebhook(id=webhook_id, body={"enabled": False}).response()
    assert update.value.status_code == 200
    assert callfire.getWebhook(id=webhook_id).response().result["enabled"] is False
    resources = callfire.findWebhookResources().response().result
    assert {"resource": "LowBalance", "supportedEvents": ["Finished", "Failed"]} in resources["items"]
    one = callfire.getWebhookResource(resource="OutboundCall").response().result
    assert one == {"resource": "OutboundCall", "supportedEvents": ["Finished"]}
    with pytest.raises(HTTPError) as deleted:
        callfire.deleteWebhook(id=webhook_id).response()
    assert deleted.value.status_code == 204
    with pytest.raises(HTTPNotFound):
        callfire.getWebhook(id=webhook_id).response()
