"""A client generated from CallFire's own Swagger file, with request and response validation on,
works against the relay once pointed at its base URL (CallFire's contract, end to end)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

with warnings.catch_warnings():  # bravado still uses jsonschema's deprecated RefResolver
    warnings.simplefilter("ignore", DeprecationWarning)
    from bravado.client import SwaggerClient
    from bravado.exception import HTTPError, HTTPNotFound
    from bravado.requests_client import RequestsClient

from tests.processes import RelayProcess
from tests.redis_server import PrivateRedis

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # bravado's jsonschema use, as above
]

SWAGGER = Path(__file__).with_name("data") / "callfire-webhooks.swagger.yaml"
CONFIG = {"validate_responses": True, "validate_requests": True, "use_models": False}


@pytest.fixture
def callfire(redis_server: PrivateRedis, prefix: str, tmp_path: Path) -> Iterator[Any]:
    relay = RelayProcess(
        "serve",
        tmp_path / "serve.log",
        redis_url=redis_server.url,
        key_prefix=prefix,
        callfire_secrets="x",
        api_credentials="api-user:api-pass",
    ).start()
    spec = yaml.safe_load(SWAGGER.read_text())
    spec["host"], spec["schemes"] = f"127.0.0.1:{relay.port}", ["http"]  # the only change a user makes
    http = RequestsClient()
    http.set_basic_auth(f"127.0.0.1:{relay.port}", "api-user", "api-pass")
    yield SwaggerClient.from_spec(spec, http_client=http, config=CONFIG).webhooks
    relay.terminate()


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
    # CallFire's spec declares no success response for PUT and DELETE (callfire.md, section 5), so a
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
