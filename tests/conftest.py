"""Shared fixtures: a private Redis for the whole run, unique key prefixes, apps and signers.

Tests never flush Redis: each test gets its own key prefix, as taskiq-redis's tests do.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import BaseRunner

from relay.app import SETTINGS, create_app
from relay.http_server import make_runner
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import RedisClient, connect
from tests.api_client import CREDENTIALS
from tests.callbacks import SECRET
from tests.logstate import saved_logging
from tests.processes import RelayProcess
from tests.redis_server import PrivateRedis


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Logging is process-wide: whatever a test configures (often through the CLI, onto a capture
    stream pytest closes afterwards) is put back, so no later test writes to a closed file."""
    with saved_logging():
        yield


@pytest.fixture(scope="session")
def redis_server() -> Iterator[PrivateRedis]:
    """A redis-server owned by the test run (never the machine's own on 6379)."""
    server = PrivateRedis()
    server.start()
    yield server
    server.close()


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture(scope="module")
def relay_api(redis_server: PrivateRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """``relay serve`` as a real process on the private Redis, the API behind ``CREDENTIALS``;
    one per test module, so its tests keep apart by the names and URLs they use."""
    relay = RelayProcess(
        "serve",
        tmp_path_factory.mktemp("relay-api") / "serve.log",
        redis_url=redis_server.url,
        key_prefix=unique_prefix(),
        callfire_secrets=SECRET,
        api_credentials=":".join(CREDENTIALS),
    ).start()
    yield relay
    relay.terminate()


@pytest.fixture
def make_settings(redis_server: PrivateRedis, prefix: str) -> Callable[..., Settings]:
    """Settings against the private Redis with this test's own key prefix; override anything."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": redis_server.url,
            "key_prefix": prefix,
            "callfire_secrets": SECRET,
            "api_credentials": ":".join(CREDENTIALS),
            "egress_allow": "127.0.0.0/8",
            "partitions": 2,
            "log_format": "json",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return Keys(settings.key_prefix, settings.partitions)


@pytest.fixture
async def redis(redis_server: PrivateRedis) -> AsyncIterator[RedisClient]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


class RelayTestServer(TestServer):
    """aiohttp's test server behind the runner a relay process uses (``make_runner``): the same
    limits, error pages and direct callback route as in production."""

    async def _make_runner(self, **_: Any) -> BaseRunner:
        return make_runner(self.app, self.app[SETTINGS])


@pytest.fixture
async def make_client(
    redis: RedisClient,
) -> AsyncIterator[Callable[..., Any]]:
    """Start the app for some settings on a real loopback port; returns an aiohttp TestClient."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(settings: Settings, **parts: Any) -> TestClient[web.Request, web.Application]:
        app = create_app(settings, redis, **parts)
        client = TestClient(RelayTestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(
    make_client: Callable[..., Any], settings: Settings
) -> TestClient[web.Request, web.Application]:
    result: TestClient[web.Request, web.Application] = await make_client(settings)
    return result


@pytest.fixture
def processes() -> Iterator[list[RelayProcess]]:
    """Relay processes a test starts (appended to this list): killed after it."""
    started: list[RelayProcess] = []
    yield started
    for proc in started:
        proc.kill()
