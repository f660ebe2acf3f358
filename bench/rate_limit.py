"""What a webhook's ``rateLimit`` costs a worker: ``python -m bench.rate_limit [--tokens N] [--rounds R]``.

A real Redis (the bench stage's). Each round spends N tokens of an unthrottled budget (rate
10,000, batches of 50) through ``Throttle.take``, as a delivery does, and N tokens one ``LEASE``
call each (what a worker would pay without batches), and N ``PING`` round trips for scale.
Reported: median microseconds per token of each, and the ratios batched / unbatched and
batched / PING, from the same run (absolute figures depend on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from bench.stage import Stage
from relay.clock import Clock
from relay.delivery.throttle import Throttle
from relay.keys import Keys
from relay.store.scripts import LEASE, run

RATE = 10_000


async def _batched(throttle: Throttle, tokens: int, webhook_id: int) -> float:
    start = time.perf_counter()
    for _ in range(tokens):
        if await throttle.take(webhook_id, RATE):
            raise RuntimeError("the budget ran out: use fewer tokens")
    return (time.perf_counter() - start) / tokens


async def _unbatched(stage: Stage, keys: Keys, tokens: int, webhook_id: int) -> float:
    args = [repr(1000 / RATE), repr(1000.0 - 1000 / RATE), 1]
    start = time.perf_counter()
    for _ in range(tokens):
        await run(stage.redis, LEASE, [keys.rate_limit(webhook_id)], args)
    return (time.perf_counter() - start) / tokens


async def _ping(stage: Stage, tokens: int) -> float:
    start = time.perf_counter()
    for _ in range(tokens):
        await stage.redis.ping()
    return (time.perf_counter() - start) / tokens


async def measure(tokens: int, rounds: int) -> dict[str, float]:
    keys = Keys("ratebench", 1)
    batched, unbatched, ping = [], [], []
    async with Stage() as stage:
        throttle = Throttle(stage.redis, keys, Clock())
        for r in range(rounds):
            batched.append(await _batched(throttle, tokens, 2 * r))
            unbatched.append(await _unbatched(stage, keys, tokens, 2 * r + 1))
            ping.append(await _ping(stage, tokens))
    b, u, p = (statistics.median(x) * 1e6 for x in (batched, unbatched, ping))
    ratios = {"batched/unbatched": b / u, "batched/ping": b / p}
    return {"batched_us": b, "unbatched_us": u, "ping_us": p, **ratios}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rate_limit", description=__doc__)
    parser.add_argument("--tokens", type=int, default=5000, help="tokens per round (<= 10000)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    for name, value in asyncio.run(measure(args.tokens, args.rounds)).items():
        print(f"{name:>18}: {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
