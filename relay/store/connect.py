"""Opening the Redis client named by the settings: one server, a cluster, or Sentinel."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import BlockingConnectionPool, Connection
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisClusterException

RedisClient = Redis | RedisCluster
"""Both speak the same commands; callers keep keys that a command shares in one hash tag."""

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - hiredis is a dependency; stay correct without it
    _hiredis_pack = None


class HiredisPackingConnection(Connection):
    """redis-py's TCP connection, packing commands with hiredis (C) into the same bytes as its
    Python packer, several times faster: every callback's and every delivery's commands go
    through here."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if _hiredis_pack is None:
            return super().pack_command(*args)
        first = args[0]
        if (isinstance(first, str) and " " in first) or (isinstance(first, bytes) and b" " in first):
            args = (*first.split(), *args[1:])  # 'CONFIG GET' goes out as two words, as redis-py does
        try:
            return [_hiredis_pack(args)]
        except TypeError:  # a value hiredis does not pack: redis-py says what is wrong with it
            return super().pack_command(*args)


MAX_CONNECTIONS = 100
"""Connections to one Redis server per client (redis-py's default bound)."""
POOL_WAIT = 20.0
"""Past ``MAX_CONNECTIONS`` commands at once, a command waits this long for a connection to come
free: a process slowed down (a CPU-starved pod) holds each connection longer, and must then queue
its commands, not fail them (redis-py's default pool raises MaxConnectionsError at once)."""


def connect(url: str, *, cluster: bool = False, **options: Any) -> RedisClient:
    """A client for ``url``; nothing is sent until it is first used."""
    options.setdefault("health_check_interval", 15)
    if cluster:
        return RedisCluster.from_url(url, **options)
    if url.startswith("redis+sentinel://"):
        return _sentinel_master(url, **options)
    if url.startswith("redis://"):
        options.setdefault("connection_class", HiredisPackingConnection)
    options.setdefault("max_connections", MAX_CONNECTIONS)
    options.setdefault("timeout", POOL_WAIT)
    return Redis.from_pool(BlockingConnectionPool.from_url(url, **options))


SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://")


def _address_problem(address: str) -> str | None:
    """What is wrong with one ``host[:port]`` of a URL, if anything. Pure."""
    host, colon, port = address.rpartition(":") if not address.endswith("]") else ("", "", "")
    if not colon:
        host = address
    if not host or host == "[]":
        return "names no host"
    if colon and not port:
        return f"has an empty port after {host}:"
    if colon and not (port.isdigit() and 1 <= int(port) <= 65535):
        return f"has a bad port {port!r} (1-65535)"
    return None


def url_problem(url: str) -> str | None:
    """What makes ``url`` unfit to name a Redis, in a few words; None when it is fit. Pure.

    The URL itself is not repeated, as it may carry a password."""
    if not url.startswith(SCHEMES):
        return "must start with " + ", ".join(SCHEMES[:-1]) + " or " + SCHEMES[-1]
    parsed = urlparse(url)
    if url.startswith("unix://"):
        return None if parsed.path else "names no socket path: unix:///run/redis.sock"
    netloc = parsed.netloc.rpartition("@")[2]
    addresses = netloc.split(",") if url.startswith("redis+sentinel://") else [netloc]
    for address in addresses:
        problem = _address_problem(address)
        if problem:
            return problem
    path = [p for p in parsed.path.split("/") if p]
    if url.startswith("redis+sentinel://"):
        if not path:
            return "names no service: redis+sentinel://host:26379/mymaster"
        path = path[1:]
    if len(path) > 1 or (path and not path[0].isdigit()):
        return f"has a bad database {'/'.join(path)!r} (a number)"
    return None


_UNKNOWN_OPTION = re.compile(r"unexpected keyword argument '([^']+)'")


def options_problem(url: str, *, cluster: bool = False) -> str | None:
    """What redis-py refuses in ``url``'s query string (an option it does not take, a value it
    cannot read), in a few words; None when it takes them all. Builds the client's parts the way
    ``connect`` does, through redis-py's public ``from_url``, without connecting."""
    if url.startswith("redis+sentinel://"):
        return None  # read by _sentinel_master, which takes sentinel_password only
    try:
        with warnings.catch_warnings():  # redis-py's deprecation notes are for run time
            warnings.simplefilter("ignore", DeprecationWarning)
            if cluster:
                RedisCluster.from_url(url)
            else:
                BlockingConnectionPool.from_url(url).make_connection()  # type: ignore[no-untyped-call]
    except RedisClusterException as exc:  # e.g. a unix:// URL
        return " ".join(str(exc).split())
    except TypeError as exc:
        found = _UNKNOWN_OPTION.search(str(exc))
        return f"has an option redis-py does not take: {found.group(1) if found else exc}"
    except ValueError as exc:
        return "has a value redis-py cannot read: " + " ".join(str(exc).split())
    return None


def display_url(url: str) -> str:
    """``url`` fit for a log line or an error message: any password replaced by ``***``."""
    parsed = urlparse(url)
    if parsed.password is None and "sentinel_password" not in parsed.query:
        return url
    user, _, hosts = parsed.netloc.rpartition("@")
    name = user.partition(":")[0]
    netloc = f"{name}:***@{hosts}" if user else hosts
    query = re.sub(r"(sentinel_password=)[^&]*", r"\1***", parsed.query)
    return parsed._replace(netloc=netloc, query=query).geturl()


def _sentinel_master(url: str, **options: Any) -> Redis:
    """``redis+sentinel://[:password@]host:port[,host:port...]/service[/db]``."""
    parsed = urlparse(url)
    netloc = parsed.netloc.rpartition("@")[2]
    hosts = []
    for item in netloc.split(","):
        host, _, port = item.rpartition(":")
        hosts.append((host or item, int(port) if port.isdigit() else 26379))
    parts = [p for p in parsed.path.split("/") if p]
    if not parts:
        raise ValueError("a Sentinel URL names its service: redis+sentinel://host:26379/mymaster")
    service, db = parts[0], int(parts[1]) if len(parts) > 1 else 0
    password = unquote(parsed.password) if parsed.password else None
    query = parse_qs(parsed.query)
    sentinel_password = query.get("sentinel_password", [None])[0]
    options.pop("health_check_interval", None)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        hosts,
        sentinel_kwargs={"password": sentinel_password} if sentinel_password else None,
        password=password,
        db=db,
        **options,
    )
    master: Redis = sentinel.master_for(service)
    return master
