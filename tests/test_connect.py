"""Opening Redis: the client the settings name, and the fast command packer."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection

from relay.store.connect import HiredisPackingConnection, connect


@pytest.mark.parametrize(
    "args",
    [
        ("SET", "k", "v"),
        ("CONFIG GET", "maxmemory-policy"),
        ("EVALSHA", "a" * 40, 1, "k", 5, b"\x00\xffbytes", "caf\u00e9", 1.5),
        ("SET", "big", b"x" * 100_000),
    ],
)
def test_hiredis_packing_matches_redis_py(args: tuple[object, ...]) -> None:
    """The fast packer sends exactly the bytes redis-py's own packer would."""
    ours = b"".join(HiredisPackingConnection().pack_command(*args))
    theirs = b"".join(Connection().pack_command(*args))
    assert ours == theirs


def test_plain_redis_urls_use_the_fast_packer() -> None:
    """redis:// clients pack with hiredis; TLS and unix sockets keep redis-py's own classes."""
    fast = connect("redis://127.0.0.1:1/0")
    tls = connect("rediss://127.0.0.1:1/0")
    assert fast.connection_pool.connection_class is HiredisPackingConnection
    assert tls.connection_pool.connection_class is not HiredisPackingConnection
