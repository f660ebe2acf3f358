"""Redis CPU per event, ingest and delivery, every feature on, and where it goes by command.

Redis is the stateful part: its CPU per event sets how many events one shard carries. Each phase
reads ``INFO cpu`` (``used_cpu_user + used_cpu_sys``: the server's own CPU time, in µs, robust on
a busy machine) and ``INFO commandstats`` (calls and µs per command, the commands run inside
scripts counted under their own names *and* inside their EVALSHA) before and after, and divides
by the events it moved:

- **ingest**: one ``relay serve`` takes signed one-event callbacks from the generator (c64);
  Redis's work is the dedup claim and the append.
- **delivery**: the events are preloaded before one ``relay work`` starts (so the preload's own
  appends are not counted); it delivers each to the one matching webhook, which has a secret,
  a filter that holds and a rate limit, with breakers, attempt records and read-your-writes on,
  until the sink has every event and the group has acknowledged them all.

The sum is the cost of an event through the relay; ``1e6 / µs`` the events/s one shard carries.
Beside it, measured in the same run, the **floor**: the same events (the same entries, in the
relay's format: ``bench.preload.Template``) appended with plain XADD (64 to a pipeline), then
read by a group 100 at a time and acknowledged, no dedup, no script, no log. The relay's cost
as a multiple of the floor holds from one machine to another better than µs do (a busy shared
VM inflates both alike).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.config import Config
from bench.consumers import WORKER_SETTINGS, backlog, sink_stats, sink_url, wait_for
from bench.ingest import url
from bench.load import Generator
from bench.matching import FILTER
from bench.preload import event_template, preload
from bench.results import Row
from bench.stage import PARTITIONS, Stage
from bench.stats import Figure, ratios
from bench.subscriptions import SUBSCRIBER_SECRET
from relay.keys import GROUP, Keys
from relay.store.connect import RedisClient
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import WebhookSpec

SECTION = "redis cost per event (every feature on)"
RATE_LIMIT = 10_000
"""The webhook's rateLimit (the most the API allows): leased from Redis in batches."""
PREFIX = "benchcost"


@dataclass(frozen=True)
class Sample:
    """What Redis has used so far: CPU seconds, and per command (calls, µs)."""

    cpu: float
    commands: dict[str, tuple[int, int]]


def parse_sample(cpu: dict[str, Any], commandstats: dict[str, Any]) -> Sample:
    """A ``Sample`` from redis-py's parsed ``INFO cpu`` and ``INFO commandstats``. Pure."""
    commands = {
        name.removeprefix("cmdstat_"): (int(stats["calls"]), int(stats["usec"]))
        for name, stats in commandstats.items()
        if isinstance(stats, dict)
    }
    return Sample(float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), commands)


async def sample(redis: RedisClient) -> Sample:
    return parse_sample(await redis.info("cpu"), await redis.info("commandstats"))


@dataclass(frozen=True)
class Cost:
    events: int
    cpu_us: float
    """Redis CPU per event, µs."""
    commands: dict[str, tuple[float, float]]
    """Per command: calls per event, µs per event (as commandstats times them)."""


def cost(before: Sample, after: Sample, events: int) -> Cost:
    """Redis's CPU and commands between two samples, per event. Pure."""
    n = max(1, events)
    commands: dict[str, tuple[float, float]] = {}
    for name, (calls, usec) in after.commands.items():
        calls0, usec0 = before.commands.get(name, (0, 0))
        if calls > calls0:
            commands[name] = ((calls - calls0) / n, (usec - usec0) / n)
    ordered = dict(sorted(commands.items(), key=lambda kv: -kv[1][1]))
    return Cost(events, (after.cpu - before.cpu) * 1e6 / n, ordered)


def breakdown(label: str, found: Cost) -> str:
    """A small table of ``found`` for a person reading the run. Pure."""
    lines = [f"{label}: {found.cpu_us:.2f} us of Redis CPU per event ({found.events} events)"]
    for name, (calls, usec) in found.commands.items():
        lines.append(f"  {name:<18} {calls:7.3f} calls  {usec:7.2f} us")
    return "\n".join(lines)


async def ingest_cost(stage: Stage, gen: Generator, seconds: float) -> Cost:
    relay = await stage.relay("serve", name="relay-serve-cost")
    await gen.closed([url(relay)], 64, 1.0)  # warm-up: imports, connections, the script load
    await stage.flush()
    before = await sample(stage.redis)
    await gen.closed([url(relay)], 64, seconds)
    after = await sample(stage.redis)
    events = await stage.stream_length()
    await stage.stop(relay)
    await stage.flush()
    return cost(before, after, events)


async def _subscribe(redis: RedisClient, keys: Keys, sink: str) -> None:
    spec = WebhookSpec(
        name="bench cost",
        resource="OutboundCall",
        events=("Finished",),
        callback=f"{sink}/match/0",
        secret=SUBSCRIBER_SECRET,
        filter=FILTER,
        rate_limit=RATE_LIMIT,
    )
    await WebhookStore(redis, keys).create(spec, int(time.time() * 1000))


async def delivery_cost(stage: Stage, events: int) -> Cost:
    sink = await stage.sink()
    keys = Keys(PREFIX, PARTITIONS)
    await _subscribe(stage.redis, keys, sink_url(sink))
    await preload(stage.redis, keys, events, 1, int(time.time() * 1000))
    before = await sample(stage.redis)
    worker = await stage.relay("work", name="relay-work-cost", key_prefix=PREFIX, **WORKER_SETTINGS)

    async def delivered() -> bool:
        return int((await sink_stats(sink))["count"]) >= events

    async def drained() -> bool:
        return await backlog(stage, keys) == 0

    await wait_for(delivered, f"{events} deliveries", within=60 + events / 200)
    await wait_for(drained, "acknowledgements", within=30)
    after = await sample(stage.redis)
    await stage.stop(worker)
    await stage.stop(sink)
    await stage.flush()
    return cost(before, after, events)


FLOOR_BATCH = 64


async def floor_cost(stage: Stage, events: int) -> tuple[Cost, Cost]:
    """The least the same events cost Redis: plain XADD in pipelines of ``FLOOR_BATCH``; then
    XREADGROUP COUNT 100 and XACK of what it read."""
    template = event_template(int(time.time() * 1000))
    stream = f"{PREFIX}:floor"
    redis = stage.redis
    await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    before = await sample(redis)
    for start in range(0, events, FLOOR_BATCH):
        pipe = redis.pipeline(transaction=False)
        for n in range(start, min(events, start + FLOOR_BATCH)):
            pipe.xadd(stream, template.fields(n))  # type: ignore[arg-type]
        await pipe.execute()
    middle = await sample(redis)
    while True:
        found: Any = await redis.xreadgroup(GROUP, "floor", {stream: ">"}, count=100)
        if not found:
            break
        await redis.xack(stream, GROUP, *[entry_id for entry_id, _ in found[0][1]])
    after = await sample(redis)
    await stage.flush()
    return cost(before, middle, events), cost(middle, after, events)


async def run_redis_cost(stage: Stage, gen: Generator, cfg: Config) -> tuple[list[Row], dict[str, Any]]:
    ingest: list[Cost] = []
    delivery: list[Cost] = []
    floors: list[tuple[Cost, Cost]] = []
    events = max(20_000, cfg.delivery_events // 5)
    for _ in range(cfg.rounds):
        floors.append(await floor_cost(stage, events))
        ingest.append(await ingest_cost(stage, gen, max(3.0, cfg.ingest_seconds)))
        delivery.append(await delivery_cost(stage, events))
        print(breakdown("ingest", ingest[-1]), breakdown("delivery", delivery[-1]), sep="\n", file=sys.stderr)
        print(f"floor: {floors[-1][0].cpu_us:.2f} us in, {floors[-1][1].cpu_us:.2f} us out", file=sys.stderr)
    together = [i.cpu_us + d.cpu_us for i, d in zip(ingest, delivery, strict=True)]
    floor = [i.cpu_us + o.cpu_us for i, o in floors]
    rows = [
        Row(SECTION, "redis CPU per event, ingest", "us", Figure.of([c.cpu_us for c in ingest])),
        Row(SECTION, "redis CPU per event, delivery", "us", Figure.of([c.cpu_us for c in delivery])),
        Row(SECTION, "redis CPU per event, in and out", "us", Figure.of(together), "<= 15",
            Figure.of(together).median <= 15),
        Row(SECTION, "events/s per Redis shard (1e6 / us)", "events/s",
            Figure.of([1e6 / t for t in together])),
        Row(SECTION, "floor: plain XADD, per event", "us", Figure.of([i.cpu_us for i, _ in floors])),
        Row(SECTION, "floor: XREADGROUP + XACK, per event", "us", Figure.of([o.cpu_us for _, o in floors])),
        Row(SECTION, "relay / floor, in and out", "x", Figure.of(ratios(together, floor))),
    ]  # fmt: skip
    data = {
        "rate_limit": RATE_LIMIT,
        "filter": FILTER,
        "runs": [
            {"ingest": vars(i), "delivery": vars(d), "floor_in": vars(f[0]), "floor_out": vars(f[1])}
            for i, d, f in zip(ingest, delivery, floors, strict=True)
        ],
    }
    return rows, data
