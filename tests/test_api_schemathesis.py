"""Schemathesis against the running app, driven by the app's own /openapi.json: every operation,
valid and invalid inputs; no 500s, and every response conforms to the document.

The app runs in a thread of its own (schemathesis calls it synchronously, over real HTTP).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, assume, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from relay.api import operations
from relay.api.auth import protected
from relay.api.openapi import document
from relay.app import create_app
from relay.settings import Settings
from relay.store.connect import connect
from tests.api_client import AUTH, webhook_body
from tests.callbacks import SECRET
from tests.redis_server import PrivateRedis

MAX_EXAMPLES = 15
"""Per operation and generation mode; the whole test stays well under a minute."""
MAX_REQUEST_LINE = 8000
"""aiohttp's HTTP parser refuses a request line past 8190 bytes itself (a text/plain 400, before
the app sees it): the generated requests that long are left out, not judged."""


class LiveApi(threading.Thread):
    """The app on a loopback port, on an event loop in this thread, until ``close()``."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True, name="live-api")
        self.settings = settings
        self.url = ""
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._done = asyncio.get_running_loop(), asyncio.Event()
        redis = connect(self.settings.redis_url or "")
        runner = web.AppRunner(create_app(self.settings, redis, listener=True, api=True), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self.ready.set()
        await self._done.wait()
        await runner.cleanup()
        await redis.aclose()

    def close(self) -> None:
        if self._loop is not None and self._done is not None:
            self._loop.call_soon_threadsafe(self._done.set)
        self.join(10)


@pytest.fixture(scope="module")
def live_api(redis_server: PrivateRedis) -> Iterator[str]:
    settings = Settings(
        redis_url=redis_server.url,
        key_prefix=f"t{uuid.uuid4().hex[:12]}",
        callfire_secrets=SECRET,
        api_credentials="admin:secret-pw",
        partitions=2,
        log_format="json",
        log_level="warning",
        # Schemathesis sends wrong credentials by the hundred from one address and expects 401
        # each time; past the failure limit they would get 429 (test_api_auth.py tests that).
        auth_failure_limit=0,
    )
    server = LiveApi(settings)
    server.start()
    assert server.ready.wait(10), "the app did not start"
    for i in range(3):  # ids 1..3 exist, so generated ids sometimes find one
        resp = requests.post(
            f"{server.url}/v2/webhooks", json=webhook_body(name=f"seed{i}"), headers=AUTH, timeout=5
        )
        assert resp.status_code == 201
    yield server.url
    server.close()


schema = schemathesis.openapi.from_dict(document(operations()))
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    # Unknown query parameters are ignored, as most APIs do: not a case to be refused.
    allow_extra_parameters=False,
    deterministic=True,  # the same cases on every run: CI is not flaky; widen locally at will
)


def test_served_document_is_the_one_tested(live_api: str) -> None:
    """The app serves the document this module tests against (the app mounts every operation)."""
    assert requests.get(f"{live_api}/openapi.json", timeout=5).json() == document(operations())


def _request_line_bytes(case: Any, base_url: str) -> int:
    kwargs = case.as_transport_kwargs(base_url=base_url)
    prepared = requests.Request(kwargs["method"], kwargs["url"], params=kwargs.get("params")).prepare()
    return len(f"{kwargs['method']} {prepared.path_url} HTTP/1.1")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms(case: Any, live_api: str) -> None:
    """Every operation, with valid and invalid inputs: no 5xx, status codes and bodies as documented."""
    assume(_request_line_bytes(case, live_api) <= MAX_REQUEST_LINE)
    excluded = []
    if case.operation.method.upper() in ("POST", "PUT") and case.operation.path.startswith("/v2/"):
        # A body can fit the schema and still be refused: the events must belong to the
        # resource, expiresAt must be in the future, the callback must be an http(s) URL.
        excluded.append(positive_data_acceptance)
    elif {"since", "until"} <= set(case.query or ()):
        excluded.append(positive_data_acceptance)  # since later than until fits the schema
    case.call_and_validate(base_url=live_api, headers=AUTH, excluded_checks=excluded)


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_without_credentials(case: Any, live_api: str) -> None:
    """Without credentials every /v2 operation answers the documented 401, never a 5xx; the open
    routes (CallFire's Swagger under /v2 among them) still conform."""
    assume(_request_line_bytes(case, live_api) <= MAX_REQUEST_LINE)
    response = case.call(base_url=live_api)
    if protected(case.operation.path):
        assert response.status_code == 401, response.text
        assert "www-authenticate" in {name.lower() for name in response.headers}
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
