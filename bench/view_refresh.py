"""``python -m bench.view_refresh``: the worker's webhook view refreshing over 10,000 webhooks.

Measures, on a private redis-server, how long ``WebhookView.refresh()`` takes once one webhook of
``--webhooks`` changed (what every worker does after any API write), and the first, cold load.
Three cases, each in its own process, interleaved round by round so the shared machine's load
falls on all of them alike:

- ``before``: the relay as it was before secrets were sealed (``--before DIR``: a checkout of that
  code, e.g. ``git archive <commit> relay | tar -x -C DIR``; left out when not given);
- ``plain``: this code, no ``RELAY_SECRET_KEYS`` (secrets in plain text);
- ``sealed``: this code with a key: every secret sealed in Redis, opened by the view.

Prints each case's median and the ratio to the first case. Nothing is asserted: a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent


def spec(n: int) -> Any:
    from relay.webhooks.model import WebhookSpec

    return WebhookSpec(
        name=f"hook-{n}",
        resource="OutboundCall",
        events=("Finished",),
        callback=f"http://127.0.0.1:9/team-{n % 50}",
        secret=f"bench-secret-{n}",
    )


async def measure(count: int, rounds: int, key: str | None) -> dict[str, Any]:
    """One case, in this process: the cold load once, then ``rounds`` one-change refreshes."""
    import relay
    from relay.embedded import EmbeddedRedis
    from relay.keys import Keys
    from relay.store.connect import connect
    from relay.store.webhooks import WebhookStore
    from relay.webhooks.view import WebhookView

    extra: dict[str, Any] = {}
    opener: dict[str, Any] = {}
    if key is not None:  # this code only: the code before has no keys
        from relay.secrets import SecretKeys
        from relay.webhooks.sealing import Opener

        extra["secret_keys"] = SecretKeys.parse(key)
        opener["opener"] = Opener(extra["secret_keys"].fernet)
    with tempfile.TemporaryDirectory(prefix="relay-bench-view-") as tmp:
        server = EmbeddedRedis(Path(tmp), appendonly=False)
        redis = connect(await asyncio.to_thread(server.start))
        try:
            store = WebhookStore(redis, Keys("benchview", 4), **extra)
            for start in range(0, count, 50):
                batch = range(start, min(count, start + 50))
                await asyncio.gather(*(store.create(spec(n), 0) for n in batch))
            view = WebhookView(store, **opener)
            started = time.perf_counter()
            await view.refresh()
            cold = time.perf_counter() - started
            times = []
            for n in range(rounds):
                await store.update(1 + n % count, spec(n + count), 0)
                started = time.perf_counter()
                await view.refresh()
                times.append(time.perf_counter() - started)
            assert len(view) == count
        finally:
            await redis.aclose()
            await asyncio.to_thread(server.stop)
    return {"cold": cold, "refresh": times, "relay": str(Path(relay.__file__).parent)}


def run_case(source: Path, count: int, rounds: int, key: str | None) -> dict[str, Any]:
    """One case in a fresh process whose ``relay`` is imported from ``source``."""
    command = [sys.executable, str(HERE), "--case", "--webhooks", str(count), "--rounds", str(rounds)]
    env = {**os.environ, "PYTHONPATH": str(source), "RELAY_BENCH_KEY": key or ""}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=source)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    if Path(result["relay"]).parent != source.resolve():
        raise RuntimeError(f"imported relay from {result['relay']}, not {source}")
    return result


def compare(before: Path | None, count: int, rounds: int, repeats: int) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    cases: dict[str, tuple[Path, str | None]] = {}
    if before is not None:
        cases["before"] = (before, None)
    cases["plain"] = (ROOT, None)
    cases["sealed"] = (ROOT, key)
    refresh: dict[str, list[float]] = {name: [] for name in cases}
    cold: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (source, case_key) in cases.items():
            result = run_case(source, count, rounds, case_key)
            refresh[name] += result["refresh"]
            cold[name].append(result["cold"])
    base = next(iter(cases))
    print(f"{count:,} webhooks; {repeats} processes x {rounds} refreshes per case, interleaved")
    for label, figures in (("refresh after one change", refresh), ("cold load", cold)):
        first = statistics.median(figures[base])
        for name, times in figures.items():
            median = statistics.median(times)
            print(f"{label:<26} {name:<7} median {median * 1000:8.2f} ms  {median / first:5.2f}x {base}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.view_refresh", description=__doc__)
    parser.add_argument("--webhooks", type=int, default=10_000, help="how many (default 10,000)")
    parser.add_argument("--rounds", type=int, default=20, help="refreshes per process (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="processes per case (default 3)")
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--case", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        key = os.environ.get("RELAY_BENCH_KEY") or None
        print(json.dumps(asyncio.run(measure(args.webhooks, args.rounds, key))))
        return
    compare(args.before, args.webhooks, args.rounds, args.repeats)


if __name__ == "__main__":
    main()
