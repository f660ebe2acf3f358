"""The relay on a real Redis Cluster (3 masters + 3 replicas) and behind a real Sentinel."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from relay.app import create_app
from relay.cli.check import run_check
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import RedisClient, connect
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import WebhookSpec
from tests.callbacks import SECRET, call_event, callback_body, signed
from tests.cluster import LocalCluster, LocalSentinel, with_signal
from tests.delivery_harness import FAST, Harness, check_read_your_writes
from tests.sink import Sink

pytestmark = pytest.mark.slow
Client = TestClient[web.Request, web.Application]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """One cluster for the tests that leave its topology as they found it."""
    local = LocalCluster()
    try:
        yield local.start()
    finally:
        local.close()


@pytest.fixture
def cluster_settings(cluster: LocalCluster, prefix: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": cluster.url,
            "redis_cluster": True,
            "key_prefix": prefix,
            "callfire_secrets": SECRET,
            "partitions": 6,
        }
        return Settings(**(values | overrides))

    return make


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Settings], Any]]:
    """Start the relay's app on a client for the settings' Redis; everything closed after."""
    opened: list[tuple[Client, RedisClient]] = []

    async def start(settings: Settings, **parts: Any) -> tuple[Client, RedisClient]:
        assert settings.redis_url is not None
        redis = connect(settings.redis_url, cluster=settings.redis_cluster)
        client: Client = TestClient(TestServer(create_app(settings, redis, **parts)))
        await client.start_server()
        opened.append((client, redis))
        return client, redis

    yield start
    for client, redis in opened:
        await client.close()
        await redis.aclose()


_ids = itertools.count(7_420_017_300_281_076_000)


def body_for(keys: Keys, partition: int) -> tuple[bytes, int]:
    """A fresh callback body whose hash puts it on ``partition``, and its call's unique id."""
    while True:
        call_id = next(_ids)
        body = callback_body(call_event(call_id=call_id))
        if keys.partition_of(hashlib.sha256(body).digest()) == partition:
            return body, call_id


async def post(client: Client, body: bytes | tuple[bytes, int]) -> int:
    body = body[0] if isinstance(body, tuple) else body
    response = await client.post("/callbacks/callfire", data=body, headers=signed(body))
    await response.read()
    return response.status


async def subscribe_one(settings: Settings, redis: RedisClient, url: str) -> None:
    spec = WebhookSpec.model_validate(
        {"resource": "OutboundCall", "events": ["Finished"], "callback": url, "secret": SecretStr("s")}
    )
    await WebhookStore(redis, keys_of(settings)).create(spec, int(time.time() * 1000))


def keys_of(settings: Settings) -> Keys:
    return Keys(settings.key_prefix, settings.partitions)


async def test_callbacks_land_on_every_partition_over_all_shards(
    cluster: LocalCluster, cluster_settings: Callable[..., Settings], serve: Any
) -> None:
    """With RELAY_REDIS_CLUSTER, callbacks for every partition are accepted and stored on 3 shards."""
    settings = cluster_settings()
    keys = keys_of(settings)
    client, redis = await serve(settings)
    statuses = [await post(client, body_for(keys, p)) for p in range(settings.partitions)]
    assert statuses == [200] * settings.partitions
    assert [await redis.xlen(stream) for stream in keys.all_events()] == [1] * settings.partitions
    shards = {cluster.node_for_key(stream).port for stream in keys.all_events()}
    assert len(shards) == 3


async def test_a_replica_url_is_enough_to_find_the_cluster(
    cluster: LocalCluster, cluster_settings: Callable[..., Settings], serve: Any
) -> None:
    """RELAY_REDIS_URL may name a replica: the client discovers the masters from it."""
    replica = cluster.replicas()[0]
    settings = cluster_settings(redis_url=f"redis://127.0.0.1:{replica.port}/0")
    client, _ = await serve(settings)
    statuses = [await post(client, body_for(keys_of(settings), p)) for p in range(settings.partitions)]
    assert statuses == [200] * settings.partitions


async def test_a_repeat_is_dropped_on_the_cluster(
    cluster_settings: Callable[..., Settings], serve: Any
) -> None:
    """The dedup claim and the stream share a hash tag, so a repeat is recognised on a cluster."""
    settings = cluster_settings()
    client, redis = await serve(settings)
    body, _ = body_for(keys_of(settings), 2)
    assert [await post(client, body), await post(client, body)] == [200, 200]
    assert await redis.xlen(keys_of(settings).events(2)) == 1


async def test_scripts_are_reloaded_on_every_primary(
    cluster: LocalCluster, cluster_settings: Callable[..., Settings], serve: Any
) -> None:
    """After SCRIPT FLUSH on every primary, the ingest script is loaded again and callbacks land."""
    settings = cluster_settings()
    keys = keys_of(settings)
    client, _ = await serve(settings)
    assert await post(client, body_for(keys, 0)) == 200
    for node in cluster.primaries():
        with node.client() as admin:
            admin.script_flush()
    statuses = [await post(client, body_for(keys, p)) for p in range(settings.partitions)]
    assert statuses == [200] * settings.partitions


async def test_min_replicas_answers_only_once_the_replica_has_the_callback(
    cluster: LocalCluster, cluster_settings: Callable[..., Settings], serve: Any
) -> None:
    """With RELAY_REDIS_MIN_REPLICAS=1 the shard's replica holds the events when the 200 is sent."""
    settings = cluster_settings(redis_min_replicas=1)
    stream = keys_of(settings).events(3)
    client, _ = await serve(settings)
    assert await post(client, body_for(keys_of(settings), 3)) == 200
    replica = cluster.replica_of(cluster.node_for_key(stream))
    with replica.client() as direct:
        direct.execute_command("READONLY")
        assert direct.xlen(stream) == 1


async def test_a_callback_not_replicated_in_time_gets_503_and_its_retry_200(
    cluster: LocalCluster, cluster_settings: Callable[..., Settings], serve: Any
) -> None:
    """A replica that does not acknowledge within the bound turns the answer into 503."""
    settings = cluster_settings(redis_min_replicas=1, redis_timeout=0.6)
    client, _ = await serve(settings)
    body, _ = body_for(keys_of(settings), 1)
    replica = cluster.replica_of(cluster.node_for_key(keys_of(settings).events(1)))
    with_signal(replica, signal.SIGSTOP)
    try:
        paused_status = await post(client, body)
    finally:
        with_signal(replica, signal.SIGCONT)
    assert paused_status == 503
    assert await post(client, body) == 200  # the retry: a duplicate, acknowledged once replicated


async def test_relay_check_reads_every_primary(
    cluster: LocalCluster, cluster_settings: Callable[..., Settings]
) -> None:
    """`relay check` on a cluster judges each primary and says how the partitions spread."""
    findings = [str(f) for f in await run_check(cluster_settings(partitions=2), call_timeout=2)]
    for node in cluster.primaries():
        assert any(f.startswith(f"ok: 127.0.0.1:{node.port}: Redis 7") for f in findings), findings
        assert f"warning: 127.0.0.1:{node.port}: persistence is off" in "\n".join(findings)
    assert any("RELAY_PARTITIONS=2 puts streams on 1 of 3 shards" in f for f in findings), findings


async def test_acknowledged_callbacks_survive_a_master_crash(prefix: str, serve: Any) -> None:
    """With RELAY_REDIS_MIN_REPLICAS=1, every callback answered 200 survives its master being
    SIGKILLed mid-traffic and its replica promoted. The promoted shard has no replica left, so it
    answers 503 (CallFire retries) until the old master rejoins as its replica; other shards go on."""
    local = LocalCluster()
    try:
        await asyncio.to_thread(local.start)
        settings = Settings(
            redis_url=local.url,
            redis_cluster=True,
            key_prefix=prefix,
            callfire_secrets=SECRET,
            partitions=3,  # {p0} and {p1} share a shard, {p2} is on another
            redis_min_replicas=1,
            redis_timeout=1.0,
        )
        keys = keys_of(settings)
        client, redis = await serve(settings)
        victim = local.node_for_key(keys.events(0))
        assert local.node_for_key(keys.events(2)) is not victim
        sent = Sent(client, keys)
        assert [await sent.post(p) for p in (0, 1, 2) * 3] == [200] * 9
        crash = asyncio.create_task(asyncio.to_thread(local.fail_over_by_crash, victim))
        while not crash.done():
            await sent.post(0)
        await crash
        assert await sent.until_accepted(2), "a shard untouched by the crash takes callbacks again"
        assert await sent.post(0) == 503, "the promoted master has no replica to WAIT for"
        await asyncio.to_thread(local.rejoin, victim)
        assert await sent.until_accepted(0), "the shard takes callbacks once a replica is back"
        assert sent.acknowledged - await stored_call_ids(redis, keys) == set()
    finally:
        await asyncio.to_thread(local.close)


class Sent:
    """Callbacks posted to one relay, and the call ids of those it acknowledged."""

    def __init__(self, client: Client, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self.acknowledged: set[int] = set()

    async def post(self, partition: int) -> int:
        body, call_id = body_for(self.keys, partition)
        status = await post(self.client, body)
        if status == 200:
            self.acknowledged.add(call_id)
        return status

    async def until_accepted(self, partition: int, attempts: int = 40) -> bool:
        for _ in range(attempts):
            if await self.post(partition) == 200:
                return True
        return False


async def stored_call_ids(redis: RedisClient, keys: Keys) -> set[int]:
    found: set[int] = set()
    for stream in keys.all_events():
        for _, fields in await redis.xrange(stream):
            found.add(int(orjson.loads(fields[b"json"])["resource"]["id"]))
    return found


async def test_a_sentinel_url_reaches_the_master(prefix: str, serve: Any) -> None:
    """RELAY_REDIS_URL=redis+sentinel://... finds the master through a real Sentinel."""
    sentinel = LocalSentinel()
    try:
        sentinel.start()
        settings = Settings(redis_url=sentinel.url, key_prefix=prefix, callfire_secrets=SECRET, partitions=1)
        client, _ = await serve(settings)
        assert await post(client, callback_body(call_event())) == 200
        with sentinel.master.client() as direct:
            assert direct.xlen(keys_of(settings).events(0)) == 1
    finally:
        await asyncio.to_thread(sentinel.close)


async def test_callbacks_in_deliveries_out_on_the_cluster(
    cluster_settings: Callable[..., Settings], serve: Any
) -> None:
    """The whole path on the cluster: a callback per partition in, each delivered to a webhook."""
    settings = cluster_settings(egress_allow="127.0.0.0/8", shutdown_grace="1s")
    keys = keys_of(settings)
    sink = await Sink().start()
    redis = connect(cluster_settings().redis_url or "", cluster=True)
    try:
        await subscribe_one(settings, redis, sink.url("/hook"))
        client, _ = await serve(settings, workers=1)
        sent = [body_for(keys, p) for p in range(settings.partitions)]
        assert [await post(client, body) for body in sent] == [200] * settings.partitions
        got = await sink.wait_for(settings.partitions, "/hook", within=6)
        delivered = {orjson.loads(r.body)["events"][0]["resource"]["id"] for r in got}
        assert delivered == {call_id for _, call_id in sent}
    finally:
        await sink.close()
        await redis.aclose()


async def test_read_your_writes_on_the_cluster(
    cluster: LocalCluster, cluster_settings: Callable[..., Settings]
) -> None:
    """On the cluster, where the webhooks and the streams sit on different shards, a create or
    delete answered before an event was appended counts for that event."""
    settings = cluster_settings(egress_allow="127.0.0.0/8", **FAST)
    keys = keys_of(settings)
    table = cluster.node_for_key(keys.webhooks_version)
    assert any(cluster.node_for_key(stream) is not table for stream in keys.all_events())
    sink = await Sink().start()
    redis = connect(settings.redis_url or "", cluster=True)
    harness = Harness(settings, redis, sink)
    try:
        await check_read_your_writes(harness)
    finally:
        await harness.close()
        await sink.close()
        await redis.aclose()


async def close_sentinel_client(redis: RedisClient) -> None:
    """The master's client, its pool and the clients of the sentinels it asked."""
    pool: Any = redis.connection_pool
    await redis.aclose()
    await pool.disconnect()
    for client in pool.sentinel_manager.sentinels:
        await client.aclose()


async def test_read_your_writes_behind_sentinel(prefix: str) -> None:
    """Behind Sentinel, a create or delete answered before an event was appended counts for it."""
    sentinel = LocalSentinel()
    sink = await Sink().start()
    try:
        await asyncio.to_thread(sentinel.start)
        settings = Settings(
            redis_url=sentinel.url, key_prefix=prefix, partitions=2, egress_allow="127.0.0.0/8", **FAST
        )
        redis = connect(sentinel.url)
        harness = Harness(settings, redis, sink)
        try:
            await check_read_your_writes(harness)
        finally:
            await harness.close()
            await close_sentinel_client(redis)
    finally:
        await sink.close()
        await asyncio.to_thread(sentinel.close)
