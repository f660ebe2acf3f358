"""Bytes of Redis memory per retained event, for sizing RELAY_STREAM_RETENTION (and what
``relay check`` multiplies by): ``python -m bench.retained [--events N] [--matching M]``.

A real Redis (the bench stage's), M webhooks matching every event (default 1), N realistic
1-event callbacks written by the ingest script, then a real worker (``relay work``) that
delivers them all and acknowledges them. What stays is what retention keeps: each event's stream
entry and its outcome log (the webhooks it matched, its attempts), plus the callback's dedup
claim, which ``RELAY_DEDUP_WINDOW`` keeps (sized separately). Measured as ``INFO memory``
deltas: after ingest, after delivery, after deleting the dedup claims, then the outcome logs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import orjson

from bench.consumers import WORKER_SETTINGS, backlog, sink_stats, sink_url
from bench.payload import Signer
from bench.stage import PARTITIONS, Stage
from bench.subscriptions import subscribe
from relay.ingest.parsing import parse_callback
from relay.ingest.writer import IngestWriter
from relay.keys import Keys

PREFIX = "retained"


async def _used(stage: Stage) -> int:
    return int((await stage.redis.info("memory"))["used_memory"])


async def _ingest(stage: Stage, keys: Keys, events: int) -> None:
    writer = IngestWriter(stage.redis, keys, dedup_window=86400.0, timeout=10.0, min_replicas=0)
    await writer.start()
    signer = Signer(int(time.time() * 1000))
    for start in range(0, events, 1000):
        calls = [
            writer.submit(parse_callback(signer.body(10**15 + n)), int(time.time() * 1000))
            for n in range(start, min(events, start + 1000))
        ]
        await asyncio.gather(*calls)
    await writer.stop()


async def _delete_matching(stage: Stage, pattern: str) -> int:
    deleted = 0
    async for key in stage.redis.scan_iter(match=pattern, count=1000):
        deleted += int(await stage.redis.unlink(key))
    return deleted


async def measure(events: int, matching: int) -> dict[str, float]:
    async with Stage() as stage:
        keys = Keys(PREFIX, PARTITIONS)
        sink = await stage.sink()
        await subscribe(stage.redis, keys, sink_url(sink), matching, 0, int(time.time() * 1000))
        worker = await stage.relay("work", name="retained", key_prefix=PREFIX, **WORKER_SETTINGS)
        base = await _used(stage)
        await _ingest(stage, keys, events)
        ingested = await _used(stage)
        deadline = time.monotonic() + 600
        while int((await sink_stats(sink))["count"]) < events * matching or await backlog(stage, keys):
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not deliver every event in 10 minutes")
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # the worker's last attempt records
        await stage.stop(worker)
        delivered = await _used(stage)
        claims = await _delete_matching(stage, f"{PREFIX}:*:seen:*")
        without_claims = await _used(stage)
        outcome_logs = await _delete_matching(stage, f"{PREFIX}:{{ev:*")
        streams_only = await _used(stage)
        return {
            "events": events,
            "webhooks_matching": matching,
            "dedup_claims": claims,
            "outcome_logs": outcome_logs,
            "bytes_per_event_waiting": (ingested - base) / events,
            "bytes_per_event_retained": (without_claims - base) / events,
            "of_which_stream_entry": (streams_only - base) / events,
            "of_which_outcome_log": (without_claims - streams_only) / events,
            "dedup_claim_bytes": (delivered - without_claims) / max(1, claims),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retained", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="events to write (default 20000)")
    parser.add_argument("--matching", type=int, default=1, help="webhooks every event matches (default 1)")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.events, args.matching))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
