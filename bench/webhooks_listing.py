"""``python -m bench.webhooks_listing``: GET /v2/webhooks with 10,000 webhooks stored.

Starts a private redis-server and the API on loopback, stores the webhooks through the relay's
own store, then times filtered, paged listings over real HTTP and prints each one's median and
95th percentile. Nothing is asserted: it is a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from relay.app import create_app
from relay.catalog import RESOURCES
from relay.embedded import EmbeddedRedis
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import RedisClient, connect
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import WebhookSpec

AUTH = {"Authorization": "Basic " + base64.b64encode(b"bench:bench").decode()}
QUERIES = {
    "resource+event, page 2": "resource=CallBroadcast&event=started&offset=100&limit=100",
    "resource+event+enabled, page 1": "resource=TextBroadcast&event=FINISHED&enabled=true&limit=100",
    "name (exact), one match": "name=hook-4242",
    "callback (exact)": "callback=http://127.0.0.1:9/team-7",
    "no filter, page 50": "offset=5000&limit=100",
    "no filter, fields=items(id,name)": "offset=5000&limit=100&fields=items(id,name)",
}


def spec(n: int) -> WebhookSpec:
    """The n-th webhook: spread over every resource and event, 50 callbacks, 1 in 10 disabled."""
    pairs = [(r, e) for r, events in RESOURCES.items() for e in events]
    resource, event = pairs[n % len(pairs)]
    return WebhookSpec(
        name=f"hook-{n}",
        resource=resource,
        events=(event,),
        callback=f"http://127.0.0.1:9/team-{n % 50}",
        secret="bench-secret",
        enabled=n % 10 != 0,
    )


async def fill(redis: RedisClient, keys: Keys, count: int) -> float:
    store = WebhookStore(redis, keys)
    started = time.perf_counter()
    for start in range(0, count, 20):
        await asyncio.gather(*(store.create(spec(n), 0) for n in range(start, min(count, start + 20))))
    return time.perf_counter() - started


async def timed(session: aiohttp.ClientSession, url: str, rounds: int) -> tuple[list[float], int]:
    times, total = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        async with session.get(url, headers=AUTH) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        times.append(time.perf_counter() - started)
        total = int(body.get("totalCount", -1))
    return times, total


async def main(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        server = EmbeddedRedis(Path(tmp), appendonly=False)
        url = await asyncio.to_thread(server.start)
        redis = connect(url)
        settings = Settings(
            redis_url=url, key_prefix="benchlist", api_credentials="bench:bench", log_level="error"
        )
        try:
            keys = Keys(settings.key_prefix, settings.partitions)
            print(f"storing {count:,} webhooks: {await fill(redis, keys, count):.1f} s")
            runner = web.AppRunner(create_app(settings, redis, listener=False, api=True), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            async with aiohttp.ClientSession(f"http://{host}:{port}") as session:
                for label, query in QUERIES.items():
                    await timed(session, f"/v2/webhooks?{query}", 3)  # warm up
                    times, total = await timed(session, f"/v2/webhooks?{query}", rounds)
                    p95 = statistics.quantiles(times, n=20)[-1]
                    matches = f"{total:>6,}" if total >= 0 else "     -"
                    print(
                        f"{label:<34} matches {matches}  "
                        f"median {statistics.median(times) * 1000:6.2f} ms  p95 {p95 * 1000:6.2f} ms"
                    )
            await runner.cleanup()
        finally:
            await redis.aclose()
            await asyncio.to_thread(server.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks_listing", description=__doc__)
    parser.add_argument("--webhooks", type=int, default=10_000, help="how many to store (default 10,000)")
    parser.add_argument("--rounds", type=int, default=200, help="requests per query (default 200)")
    args = parser.parse_args()
    asyncio.run(main(args.webhooks, args.rounds))
