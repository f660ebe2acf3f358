"""``relay check``: is this configuration and this Redis fit to run the relay?

Validates the settings (an invalid one exits 2 before anything else), connects to Redis and reads
what can lose accepted callbacks: persistence off, ``appendfsync no``, a ``maxmemory-policy`` that
evicts, fewer replicas than RELAY_REDIS_MIN_REPLICAS; and whether RELAY_STREAM_RETENTION x the
ingest rate (``--ingest-rate``, else what the streams hold over the time they span) x the bytes
per retained event fits in half of ``maxmemory``. On Redis Cluster every primary is read.

The judgements are pure functions of the settings and of facts read from Redis
(``relay.cli.check_rules``); only ``gather`` talks to Redis. Exit codes: 0 fit (warnings may be
printed), 1 an error (or a warning with ``--strict``, said on a last line), 2 invalid
configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from relay.cli.check_rules import (
    Finding,
    exit_code,
    facts_from,
    retention_finding,
    server_findings,
    settings_findings,
    spread_finding,
    strict_summary,
)
from relay.cli.common import load_settings, run_async, seconds
from relay.keys import Keys
from relay.runtime import redis_url_in_use
from relay.settings import Settings
from relay.store.connect import RedisClient, connect, display_url
from relay.store.event_log import EventLog


async def _retention(redis: RedisClient, settings: Settings, maxmemory: int, rate: float | None) -> Finding:
    source = "given"
    if rate is None:
        keys = Keys(settings.key_prefix, settings.partitions)
        rate, source = await EventLog(redis, keys).ingest_rate(), "measured on the streams"
    return retention_finding(settings, rate, maxmemory, source)


async def _config(redis: RedisClient, **target: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in ("save", "appendfsync"):
        with contextlib.suppress(RedisError):  # CONFIG is often renamed or refused on managed Redis
            reply = await redis.config_get(name, **target)
            found.update((str(key), str(value)) for key, value in reply.items())
    return found


async def gather(redis: RedisClient, settings: Settings, rate: float | None = None) -> list[Finding]:
    """Read every server (each primary of a cluster) and judge it; and the memory retention
    needs at ``rate`` events/s (None: the rate the streams show)."""
    if not isinstance(redis, RedisCluster):
        info = await redis.info()
        facts = facts_from("redis", info, await _config(redis))
        found = server_findings(facts, settings)
        found.append(await _retention(redis, settings, int(info.get("maxmemory", 0)), rate))
        return found
    await redis.initialize()
    primaries = redis.get_primaries()
    found = []
    maxmemory = 0
    for node in primaries:
        info = await redis.info(target_nodes=node)
        facts = facts_from(node.name, info, await _config(redis, target_nodes=node))
        found.extend(server_findings(facts, settings))
        maxmemory += int(info.get("maxmemory", 0))
    keys = Keys(settings.key_prefix, settings.partitions)
    used = {getattr(redis.get_node_from_key(stream), "name", "") for stream in keys.all_events()}
    found.append(spread_finding(len(primaries), len(used), settings.partitions))
    found.append(await _retention(redis, settings, maxmemory, rate))
    return found


async def run_check(settings: Settings, call_timeout: float, rate: float | None = None) -> list[Finding]:
    findings = settings_findings(settings, Settings.unknown_env())
    target = await redis_url_in_use(settings)
    if target is None:
        return findings  # no Redis named, none embedded running: nothing to connect to
    url = display_url(target)
    redis = connect(
        target,
        cluster=settings.redis_cluster,
        socket_timeout=call_timeout,
        socket_connect_timeout=call_timeout,
    )
    try:
        async with asyncio.timeout(call_timeout * 3):
            findings.extend(await gather(redis, settings, rate))
    except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        findings.append(Finding("error", f"cannot use Redis at {url}: {reason}"))
    finally:
        await redis.aclose()
    return findings


def _check_cmd(args: argparse.Namespace) -> int:
    settings = load_settings()
    findings: list[Finding] = []

    async def go() -> int:
        findings.extend(await run_check(settings, args.timeout, args.ingest_rate))
        return 0

    run_async(go)
    for finding in findings:
        print(finding)
    summary = strict_summary(findings, args.strict)
    if summary is not None:
        print(summary)
    return exit_code(findings, args.strict)


def register(sub: Any) -> None:
    check = sub.add_parser(
        "check",
        help="validate the configuration and the Redis it names",
        description="Validate the configuration, connect to Redis (every primary of a cluster) and "
        "warn about what can lose accepted callbacks: persistence off, appendfsync no, a "
        "maxmemory-policy that evicts, too few replicas, a stream retention that needs over half "
        "of maxmemory. Exit 0: fit; 1: an error (or a warning "
        "with --strict); 2: invalid configuration.",
    )
    check.add_argument("--strict", action="store_true", help="treat warnings as failures")
    check.add_argument(
        "--timeout", type=seconds, default=3.0, help="seconds allowed per Redis call (default 3)"
    )
    check.add_argument(
        "--ingest-rate",
        type=float,
        metavar="EVENTS_PER_S",
        help="the events/s to size retention for (default: the rate the streams show)",
    )
    check.set_defaults(handler=_check_cmd)
