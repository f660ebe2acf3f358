"""Opening Redis: the client the settings name, and the fast command packer."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.connection import Connection

from relay.store.connect import (
    MAX_CONNECTIONS,
    HiredisPackingConnection,
    connect,
    options_problem,
    url_problem,
)
from tests.redis_server import PrivateRedis


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


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://127.0.0.1:6379/0", None),
        ("redis://127.0.0.1", None),
        ("rediss://user:p%40ss@redis.example:6380/2", None),
        ("redis://[::1]:6379/0", None),
        ("unix:///run/redis.sock?db=1", None),
        ("redis+sentinel://:pw@s1:26379,s2:26380/mymaster/1", None),
        ("redis://127.0.0.1:/0", "has an empty port after 127.0.0.1:"),
        ("redis://127.0.0.1:0/0", "has a bad port '0' (1-65535)"),
        ("redis://127.0.0.1:65536/0", "has a bad port '65536' (1-65535)"),
        ("redis://127.0.0.1:abc/0", "has a bad port 'abc' (1-65535)"),
        ("redis://:6379/0", "names no host"),
        ("redis:///0", "names no host"),
        ("redis://u:secret@:6379", "names no host"),
        ("redis://127.0.0.1:6379/zero", "has a bad database 'zero' (a number)"),
        ("unix://", "names no socket path: unix:///run/redis.sock"),
        ("redis+sentinel://s1:26379,s2:/mymaster", "has an empty port after s2:"),
        ("redis+sentinel://s1:26379", "names no service: redis+sentinel://host:26379/mymaster"),
        ("http://127.0.0.1:6379", "must start with redis://, rediss://, unix:// or redis+sentinel://"),
        ("127.0.0.1:6379", "must start with redis://, rediss://, unix:// or redis+sentinel://"),
    ],
)
def test_url_problems_are_named(url: str, problem: str | None) -> None:
    """A Redis URL with an empty or bad port, no host, no socket path or an unknown scheme is refused."""
    assert url_problem(url) == problem


async def test_more_commands_at_once_than_connections_wait_for_one(
    redis_server: PrivateRedis, prefix: str
) -> None:
    """Past MAX_CONNECTIONS commands in flight (a slowed process holds each connection longer), the
    extra ones wait for a connection to come free: every command is answered, none fails."""
    client = connect(redis_server.url)
    try:
        waits = [client.blpop([f"{prefix}:empty:{n}"], timeout=0.2) for n in range(MAX_CONNECTIONS + 20)]
        answers = await asyncio.gather(*waits)
    finally:
        await client.aclose()
    assert answers == [None] * (MAX_CONNECTIONS + 20)


@pytest.mark.parametrize(
    ("url", "cluster", "problem"),
    [
        ("redis://127.0.0.1/0?socket_timeout=2&retry_on_timeout=yes", False, None),
        ("rediss://127.0.0.1/0?ssl_cert_reqs=none", False, None),
        ("redis://127.0.0.1:7000", True, None),
        ("redis+sentinel://s1:26379/mymaster?anything=1", False, None),
        ("redis://127.0.0.1/0?bogus=1", False, "has an option redis-py does not take: bogus"),
        ("unix:///run/redis.sock?bogus=1", False, "has an option redis-py does not take: bogus"),
        ("redis://127.0.0.1:7000?bogus=1", True, "has an option redis-py does not take: bogus"),
        (
            "redis://127.0.0.1/0?socket_timeout=abc",
            False,
            "has a value redis-py cannot read: Invalid value for 'socket_timeout' in connection URL.",
        ),
    ],
)
def test_url_options_are_read_as_redis_py_reads_them(url: str, cluster: bool, problem: str | None) -> None:
    """An option redis-py does not take, or cannot read, is named; what it takes passes."""
    assert options_problem(url, cluster=cluster) == problem
