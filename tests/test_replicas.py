"""RELAY_REDIS_MIN_REPLICAS on one Redis (not a cluster) with a real replica: WAIT before 2xx."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest

from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import connect
from tests.callbacks import SECRET, call_event, callback_body, signed
from tests.cluster import Node, Processes, cluster_ports, wait_for, with_signal
from tests.traffic import running_relay

pytestmark = pytest.mark.slow


class Pair(Processes):
    """A primary and one replica of it."""

    def __init__(self) -> None:
        super().__init__("relay-test-replica-")
        primary_port, replica_port = cluster_ports(2)
        self.primary = self.spawn(primary_port, "--repl-diskless-sync-delay", "0")
        self.replica = self.spawn(replica_port, "--replicaof", "127.0.0.1", str(primary_port))
        wait_for(self._in_sync, 10, "the replica to sync")

    def _in_sync(self) -> bool:
        return self.replica.info("replication").get("master_link_status") == "up"


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    made: Pair | None = None
    try:
        made = Pair()
        yield made
    finally:
        if made is not None:
            made.close()


def settings_for(node: Node, prefix: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": f"redis://127.0.0.1:{node.port}/0",
        "key_prefix": prefix,
        "callfire_secrets": SECRET,
        "partitions": 1,
        "redis_min_replicas": 1,
    }
    return Settings(**(values | overrides))


async def test_the_replica_holds_a_callback_when_it_is_acknowledged(pair: Pair, prefix: str) -> None:
    """With RELAY_REDIS_MIN_REPLICAS=1 the 200 comes once the replica has the event."""
    settings = settings_for(pair.primary, prefix)
    redis = connect(settings.redis_url or "")
    try:
        async with running_relay(settings, redis) as relay:
            body = callback_body(call_event())
            assert await relay.post_callback(body, signed(body)) == 200
    finally:
        await redis.aclose()
    with pair.replica.client() as direct:
        assert direct.xlen(Keys(prefix, 1).events(0)) == 1


async def test_a_stalled_replica_turns_the_answer_into_503(pair: Pair, prefix: str) -> None:
    """A replica that cannot acknowledge within half of RELAY_REDIS_TIMEOUT: 503, then 200 on retry."""
    settings = settings_for(pair.primary, prefix, redis_timeout="0.6s")
    redis = connect(settings.redis_url or "")
    body = callback_body(call_event())
    try:
        async with running_relay(settings, redis) as relay:
            with_signal(pair.replica, signal.SIGSTOP)
            try:
                stalled = await relay.post_callback(body, signed(body))
            finally:
                with_signal(pair.replica, signal.SIGCONT)
            retried = await relay.post_callback(body, signed(body))
    finally:
        await redis.aclose()
    assert (stalled, retried) == (503, 200)
