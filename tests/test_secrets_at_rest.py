"""Webhook secrets at rest, on a real Redis with AOF: with RELAY_SECRET_KEYS set, no secret
written through the API or the CLI leaves a trace in any key of any type, nor in the files Redis
writes; the deliveries are still signed with it. Without keys, the same scan finds the secrets (so
the scan can see them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from relay.cli import main
from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.api_client import AUTH, create
from tests.callbacks import call_event
from tests.delivery_harness import Harness, open_harness
from tests.redis_server import PrivateRedis
from tests.sink import callfire_valid, standard_verified

KEY = Fernet.generate_key().decode()
SECRETS = {
    "/api": "api-secret-b7e4a19c",
    "/replaced": "replaced-secret-5d02f7",
    "/put": "put-secret-93ac61e0",
    "/cli": "cli-secret-4f8b2d77",
}


@pytest.fixture(scope="module")
def redis_server() -> Iterator[PrivateRedis]:
    """This module's own Redis, with AOF on, so its files can be searched too."""
    server = PrivateRedis(appendonly=True)
    server.start()
    yield server
    server.close()


async def every_value(redis: RedisClient) -> bytes:
    """Every key of the Redis and everything each holds, whatever its type, as one byte string."""
    parts: list[bytes] = []
    async for key in redis.scan_iter(count=1000):
        kind = (await redis.type(key)).decode()
        parts.append(key)
        if kind == "string":
            parts.append(await redis.get(key) or b"")
        elif kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                parts += [field, value]
        elif kind == "list":
            parts += await redis.lrange(key, 0, -1)
        elif kind == "set":
            parts += list(await redis.smembers(key))
        elif kind == "zset":
            parts += [member for member, _ in await redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            for entry_id, fields in await redis.xrange(key):
                parts.append(entry_id)
                for field, value in fields.items():
                    parts += [field, value]
        else:
            raise AssertionError(f"key {key!r} of unexpected type {kind}")
    return b"\n".join(parts)


def every_file(server: PrivateRedis) -> bytes:
    """Every file Redis keeps in its directory (the AOF's parts and manifest, its log), concatenated."""
    return b"\n".join(p.read_bytes() for p in sorted(server.data_dir.rglob("*")) if p.is_file())


def aof_files(server: PrivateRedis) -> list[Path]:
    return [p for p in server.data_dir.rglob("*.aof*") if p.is_file()]


async def write_through_every_way_in(
    harness: Harness, make_client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Webhooks created and changed through the API and the CLI, one secret each (SECRETS)."""
    client = await make_client(harness.settings)
    sink = harness.sink
    await create(client, callback=sink.url("/api"), secret=SECRETS["/api"])
    replaced = await create(client, callback=sink.url("/put"), secret=SECRETS["/replaced"])
    resp = await client.put(f"/v2/webhooks/{replaced}", json={"secret": SECRETS["/put"]}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    renamed = await create(client, name="before", callback=sink.url("/renamed"), secret=SECRETS["/api"])
    resp = await client.put(f"/v2/webhooks/{renamed}", json={"name": "after"}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRETS["/cli"])
    settings: Settings = harness.settings
    monkeypatch.setenv("RELAY_REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("RELAY_KEY_PREFIX", settings.key_prefix)
    monkeypatch.setenv("RELAY_PARTITIONS", str(settings.partitions))
    if settings.secret_keys:
        monkeypatch.setenv("RELAY_SECRET_KEYS", KEY)
    args = ["--resource", "OutboundCall", "--event", "Finished", "--callback", sink.url("/cli")]
    command = ["webhooks", "create", *args, "--secret-file", str(secret_file)]
    assert await asyncio.to_thread(main, command) == 0  # the CLI runs its own event loop


async def test_no_secret_reaches_redis_or_its_files(
    make_settings: Callable[..., Any],
    redis: RedisClient,
    redis_server: PrivateRedis,
    make_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """With keys, after writes by API and CLI and their deliveries, no key of any type, and no file
    of Redis (AOF included), holds any secret's bytes; each delivery verifies with its secret."""
    async with open_harness(make_settings, redis, secret_keys=KEY) as h:
        await write_through_every_way_in(h, make_client, monkeypatch, tmp_path)
        await h.start()
        await h.publish(call_event())
        for path, secret in {**SECRETS, "/renamed": SECRETS["/api"]}.items():
            if path == "/replaced":
                continue
            (got,) = await h.sink.wait_for(1, path)
            assert callfire_valid(got, secret) and standard_verified(got, secret), path
        await h.settled()
        stored, files = await every_value(redis), every_file(redis_server)
    assert aof_files(redis_server), "Redis wrote no AOF"
    for haystack in (stored, files):
        assert h.sink.url("/cli").encode() in haystack  # the search sees what was written
        for secret in SECRETS.values():
            assert secret.encode() not in haystack


async def test_without_keys_the_same_search_finds_the_secrets(
    make_settings: Callable[..., Any],
    redis: RedisClient,
    redis_server: PrivateRedis,
    make_client: Callable[..., Any],
) -> None:
    """Without keys secrets are stored in plain text, as before: the search above finds them."""
    async with open_harness(make_settings, redis) as h:
        client = await make_client(h.settings)
        secret = "plain-secret-without-keys-31c9"
        await create(client, callback=h.sink.url("/plain"), secret=secret)
        assert secret.encode() in await every_value(redis)
    assert secret.encode() in every_file(redis_server)
