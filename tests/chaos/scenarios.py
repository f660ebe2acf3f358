"""The fault scenarios of the reliability suite. Each runs a real deployment on loopback, bounded
in time, and returns its tally; ``scale`` multiplies the traffic (1 in the test suite, more in
``make chaos``)."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from relay.settings_types import parse_schedule
from relay.store.streams import Streams
from tests.api_client import basic
from tests.callbacks import signed
from tests.chaos.deployment import SETTINGS, ChaosSink, Deployment, Tally
from tests.chaos.proxy import Faults, FlakyProxy
from tests.processes import RelayProcess

Scenario = Callable[[Path, int], Awaitable[Tally]]


def cpu_seconds(proc: RelayProcess) -> float:
    assert proc.proc is not None
    fields = Path(f"/proc/{proc.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def worker_killed_mid_delivery(tmp: Path, scale: int) -> Tally:
    """1. A worker is SIGKILLed while deliveries are in flight; another finishes the work."""
    async with Deployment(tmp, workers=2, sink=ChaosSink(delay=0.05)) as d:
        hook = await d.subscribe()
        bodies = d.bodies(100 * scale)
        sending = asyncio.create_task(d.send(bodies))
        while len(d.sink.received) < 20:
            await asyncio.sleep(0.01)
        d.workers[0].kill()
        acked = await sending
        tally = await d.tally(acked, [hook], len(bodies))
        tally.notes["killed"] = "worker 1 of 2, SIGKILL, after 20 deliveries"
        return tally


async def worker_killed_before_ack(tmp: Path, scale: int) -> Tally:
    """2. A worker is SIGKILLed right after a callback answered 2xx, before it acknowledged the
    entry: the redelivery carries the same webhook-id."""
    sink = ChaosSink()
    async with Deployment(tmp, workers=1, sink=sink) as d:
        hook = await d.subscribe()
        bodies = d.bodies(20 * scale)
        first = d.workers[0]

        async def kill_after_fifth(answered: int) -> None:
            if answered != 5:
                return
            # Writes pause before this 2xx goes out, so the worker's acknowledgement cannot reach
            # Redis; the worker dies while it waits, and only then do writes resume.
            await d.redis.execute_command("CLIENT", "PAUSE", "5000", "WRITE")

            async def kill_then_resume() -> None:
                await asyncio.sleep(0.3)
                first.kill()
                await d.redis.execute_command("CLIENT", "UNPAUSE")

            background.add(asyncio.create_task(kill_then_resume()))

        background: set[asyncio.Task[None]] = set()
        sink.on_ok = kill_after_fifth
        acked = await d.send(bodies)
        deadline = time.monotonic() + 10
        while first.proc is not None and first.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        d.add_worker()
        tally = await d.tally(acked, [hook], len(bodies))
        tally.notes["ids not expected"] = len(set(sink.ok) - d.expected_ids(acked, [hook]))
        return tally


async def redis_restarted_with_aof(tmp: Path, scale: int) -> Tally:
    """3. Redis is SIGKILLed and restarted from its AOF (appendfsync everysec) during traffic:
    nothing the listener acknowledged is lost; pending entries resume."""
    async with Deployment(tmp, workers=1, sink=ChaosSink(delay=0.02), appendonly=True) as d:
        hook = await d.subscribe()
        bodies = d.bodies(150 * scale)
        sending = asyncio.create_task(d.send(bodies))
        while len(d.sink.received) < 30:
            await asyncio.sleep(0.01)
        d.redis_server.kill()
        await asyncio.sleep(1.0)
        d.redis_server.start()
        acked = await sending
        tally = await d.tally(acked, [hook], len(bodies), within=45)
        tally.notes["outage"] = "SIGKILL, 1 s down, restarted from AOF"
        return tally


async def redis_restarted_empty(tmp: Path, scale: int) -> Tally:
    """4. Redis without persistence restarts empty: the listener answers 503 while it is away,
    workers recreate their groups and go on, without an error spin."""
    async with Deployment(tmp, workers=1, appendonly=False) as d:
        hook = await d.subscribe()
        worker = d.workers[0]
        log_before = worker.log_path.stat().st_size
        cpu_before = cpu_seconds(worker)
        d.redis_server.kill()
        body = d.bodies(1)[0]
        url = d.listeners[0].base_url + "/callbacks/callfire"
        async with d.session.post(url, data=body, headers=signed(body)) as resp:
            status_during = resp.status
        outage = 3.0
        await asyncio.sleep(outage)
        log_lines = worker.log_path.read_bytes()[log_before:].count(b"\n")
        cpu_during = cpu_seconds(worker) - cpu_before
        d.redis_server.restart(keep_data=False)
        hook = await d.subscribe()  # the webhook table went with the data
        bodies = d.bodies(50 * scale)
        acked = await d.send(bodies)
        tally = await d.tally(acked, [hook], len(bodies))
        tally.notes.update(
            {
                "listener status during outage": status_during,
                "worker log lines during 3 s outage": log_lines,
                "worker CPU seconds during 3 s outage": round(cpu_during, 3),
            }
        )
        return tally


async def flaky_callback(tmp: Path, scale: int) -> Tally:
    """6. A callback answering random 500s, resets and slow responses, up to 5 times for one
    event (the schedule allows 9 attempts; uncapped, one event in ~1,300 would fail all 9 and be
    dead-lettered, as it should): everything arrives in the end, and no retry comes sooner than
    the schedule allows."""
    sink = ChaosSink(fail=0.3, reset=0.1, slow=0.05, max_failures=5)
    # No circuit breaker: ten failures in a row (a few % of runs at this failure rate) would
    # rightly pause the webhook past this short schedule; breaking is tested in
    # test_delivery_breaker.py, this scenario tests the schedule.
    async with Deployment(tmp, workers=1, sink=sink, delivery_timeout="0.5s", breaker_failures="0") as d:
        hook = await d.subscribe()
        bodies = d.bodies(60 * scale)
        acked = await d.send(bodies)
        tally = await d.tally(acked, [hook], len(bodies), within=45)
        schedule = parse_schedule(SETTINGS["retry_schedule"])
        early = 0
        for times in sink.attempt_times.values():
            for n, (a, b) in enumerate(itertools.pairwise(times)):
                if b - a < schedule[min(n, len(schedule) - 1)] * 0.5:  # jitter is at most +-50 %
                    early += 1
        tally.notes["retries sooner than the schedule"] = early
        tally.notes["requests"] = len(sink.received)
        return tally


async def poison_entry(tmp: Path, scale: int) -> Tally:
    """7. A poison entry goes to the dead letters and the events behind it keep flowing."""
    async with Deployment(tmp, workers=1) as d:
        hook = await d.subscribe()
        for p in range(d.keys.partitions):
            await d.redis.xadd(d.keys.events(p), {"garbage": "not an event"})
        bodies = d.bodies(30 * scale)
        acked = await d.send(bodies)
        tally = await d.tally(acked, [hook], len(bodies))
        deadline = time.monotonic() + 10
        while await d.redis.xlen(d.keys.dead_letters) < d.keys.partitions and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        tally.notes["poison entries dead-lettered"] = int(await d.redis.xlen(d.keys.dead_letters))
        return tally


async def sigterm_under_load(tmp: Path, scale: int) -> Tally:
    """8. SIGTERM during load: in-flight deliveries finish, the process exits within its grace
    period with code 0, and another worker delivers the rest."""
    async with Deployment(tmp, workers=1, sink=ChaosSink(delay=0.3)) as d:
        hook = await d.subscribe()
        bodies = d.bodies(60 * scale)
        acked = await d.send(bodies)
        while len(d.sink.received) < 10:
            await asyncio.sleep(0.01)
        worker = d.workers[0]
        assert worker.proc is not None
        started = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.proc.wait, 30)
        took = time.monotonic() - started
        d.add_worker()
        tally = await d.tally(acked, [hook], len(bodies), within=45)
        tally.notes.update({"exit code": code, "exit took s": round(took, 2), "grace s": 3})
        return tally


async def volume_and_fairness(tmp: Path, scale: int) -> Tally:
    """9. Several listeners and workers, many callbacks: every acknowledged callback reaches
    every matching webhook, none starved."""
    async with Deployment(tmp, listeners=2, workers=2) as d:
        hooks = [await d.subscribe(f"/h{n}") for n in range(3)]
        bodies = d.bodies(500 * scale)
        acked = await d.send(bodies, concurrency=32, give_up=600)
        tally = await d.tally(acked, hooks, len(bodies), within=60 + 2 * scale)
        # Distinct delivery ids: a delivery repeated after a timeout under load is a duplicate
        # (allowed, at least once, and counted in tally.duplicates), not a second event.
        per_hook = {
            h: len({r.delivery_id for r in d.sink.received if r.path == f"/h{n}"})
            for n, h in enumerate(hooks)
        }
        tally.notes["deliveries per webhook"] = per_hook
        return tally


async def flaky_link_to_redis(tmp: Path, scale: int) -> Tally:
    """5. The listener reaches Redis through a proxy that delays and cuts connections mid-command:
    no reply is matched to the wrong command, and no client retry slips a duplicate past the dedup."""
    async with Deployment(tmp, listeners=0, workers=1) as d:
        proxy = await FlakyProxy(
            d.redis_server.port, Faults(delay=0.05, delay_rate=0.2, reset_rate=0.1)
        ).start()
        try:
            listener = d.add_listener(wait_ready=False, redis_url=proxy.url)
            await asyncio.to_thread(listener.wait_ready)  # the proxy runs on this event loop
            hook = await d.subscribe()
            bodies = d.bodies(200 * scale)
            acked = await d.send(bodies)
            tally = await d.tally(acked, [hook], len(bodies))
            stored = 0
            for p in range(d.keys.partitions):
                stored += int(await d.redis.xlen(d.keys.events(p)))
            tally.notes.update(
                {
                    "proxy resets": proxy.resets,
                    "events stored": stored,
                    "events acknowledged": sum(acked.values()),
                }
            )
            return tally
        finally:
            await proxy.stop()


async def trimming_under_backlog(tmp: Path, scale: int) -> Tally:
    """10. Streams trimmed (retention 0) again and again while a backlog drains slowly: no entry
    that is not yet acknowledged is ever trimmed."""
    async with Deployment(tmp, workers=0, sink=ChaosSink(delay=0.05)) as d:
        hook = await d.subscribe()
        bodies = d.bodies(150 * scale)
        acked = await d.send(bodies)  # the backlog waits: no worker yet
        d.add_worker()
        streams = Streams(d.redis, d.keys)
        trims = removed = 0
        expected = d.expected_ids(acked, [hook])
        deadline = time.monotonic() + 30
        while not expected <= set(d.sink.ok) and time.monotonic() < deadline:
            for p in range(d.keys.partitions):
                removed += await streams.trim(d.keys.events(p), int(time.time() * 1000), 0)
                trims += 1
            await asyncio.sleep(0.05)
        tally = await d.tally(acked, [hook], len(bodies))
        tally.notes.update({"trims": trims, "entries trimmed": removed})
        return tally


@dataclass
class Churned:
    """One webhook of the churn: when (monotonic) its create and delete were sent and answered."""

    path: str
    created: float = 0.0
    delete_sent: float = 0.0
    deleted: float = 0.0
    deleted_unix: float = 0.0
    """When the delete was answered, on the clock the workers' logs use."""
    id: int = 0


async def _churn(d: Deployment, hooks: list[Churned], lifetimes: list[float]) -> None:
    """Create each webhook through the API, keep it for its lifetime, delete it."""
    api = d.listeners[0].base_url + "/v2/webhooks"
    auth = basic("chaos", "chaos")
    for hook, lifetime in zip(hooks, lifetimes, strict=True):
        spec = {"name": hook.path, "resource": "OutboundCall", "events": ["Finished"]}
        spec |= {"callback": d.sink.url(hook.path), "secret": "churn-secret"}
        async with d.session.post(api, json=spec, headers=auth) as resp:
            assert resp.status == 201, await resp.text()
            hook.id = (await resp.json())["id"]
            hook.created = time.monotonic()
        await asyncio.sleep(lifetime)
        hook.delete_sent = time.monotonic()
        async with d.session.delete(f"{api}/{hook.id}", headers=auth) as resp:
            assert resp.status == 204, await resp.text()
            hook.deleted, hook.deleted_unix = time.monotonic(), time.time()


async def webhook_churn(tmp: Path, scale: int) -> Tally:
    """11. Webhooks created and deleted through the API under load (500 callbacks and 5 webhooks
    per unit of scale; 2 workers): no event is missed by a webhook whose create was answered
    before its callback was sent (and that still existed when the event was matched: when a
    steady webhook's copy of the event arrived); none whose callback was sent after a delete was
    answered reaches the deleted webhook; no attempt reaches one more than 1 s after its delete."""
    async with Deployment(tmp, workers=2, api_credentials="chaos:chaos") as d:
        steady = await d.subscribe("/steady")
        bodies = d.bodies(500 * scale)
        churned = [Churned(f"/churn/{n}") for n in range(5 * scale)]
        lanes = 10 if scale > 1 else 5
        rand = random.Random(13)
        lifetimes = [rand.uniform(0.2, 1.0) for _ in churned]
        sent_at: dict[str, float] = {}
        sending = asyncio.create_task(d.send(bodies, sent_at=sent_at))
        await asyncio.gather(*(_churn(d, churned[k::lanes], lifetimes[k::lanes]) for k in range(lanes)))
        acked = await sending
        tally = await d.tally(acked, [steady], len(bodies))
        tally.notes.update(_churn_findings(d, churned, sent_at))
        return tally


def worker_log(workers: list[RelayProcess], event: str) -> list[dict[str, Any]]:
    """The workers' JSON log records of one kind (``event``)."""
    records = []
    for worker in workers:
        for line in worker.log_path.read_text(errors="replace").splitlines():
            if f'"{event}"' in line and (record := orjson.loads(line)).get("event") == event:
                records.append(record)
    return records


def attempt_starts(workers: list[RelayProcess]) -> dict[int, list[float]]:
    """Webhook id -> when (unix seconds) each of its successful attempts started, from the
    workers' own ``delivered`` log lines (the line's time less the attempt's duration): what
    the worker did, not when a busy sink got round to it."""
    starts: dict[int, list[float]] = {}
    for record in worker_log(workers, "delivered"):
        at = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
        starts.setdefault(record["webhook_id"], []).append(at - record["ms"] / 1000)
    return starts


def _churn_findings(
    d: Deployment, churned: list[Churned], sent_at: dict[str, float]
) -> dict[str, int | float]:
    """What the churned webhooks received, against when their creates and deletes were answered."""
    steady_at: dict[str, float] = {}  # callback digest prefix -> first arrival at /steady
    for r in d.sink.at("/steady"):
        steady_at.setdefault(r.delivery_id.split("_")[1], r.at)
    sent = {digest[:32]: at for digest, at in sent_at.items()}
    starts = attempt_starts(d.workers)
    dropped = {  # (callback digest prefix, webhook id) of each delivery dropped as its webhook was gone
        (r["delivery_id"].split("_")[1], r["webhook_id"])
        for r in worker_log(d.workers, "webhook gone; delivery dropped")
    }
    missed = after_delete = late = owed = 0
    latest = 0.0
    for hook in churned:
        got = {r.delivery_id.split("_")[1] for r in d.sink.at(hook.path)}
        for r in d.sink.at(hook.path):
            after_delete += sent.get(r.delivery_id.split("_")[1], 0.0) > hook.deleted
        for start in starts.get(hook.id, []):
            latest = max(latest, start - hook.deleted_unix)
            late += start > hook.deleted_unix + 1.0
        for digest, at in sent.items():
            matched_while_alive = steady_at.get(digest, float("inf")) < hook.delete_sent
            gone = (digest, hook.id) in dropped
            if at > hook.created and matched_while_alive:
                owed += 1
                missed += digest not in got and not gone
    return {
        "webhooks created and deleted": len(churned),
        "deliveries to them": sum(len(d.sink.at(h.path)) for h in churned),
        "attempts logged": sum(len(starts.get(h.id, [])) for h in churned),
        "dropped, deleted before their attempt": len(dropped),
        "owed (sent after the create, matched before the delete)": owed,
        "missed": missed,
        "sent after the delete, delivered": after_delete,
        "attempts over 1 s after the delete": late,
        "latest attempt after a delete, s": round(max(latest, 0.0), 3),
    }


SCENARIOS: dict[str, Scenario] = {
    "1 worker SIGKILL mid-delivery": worker_killed_mid_delivery,
    "2 worker SIGKILL after 2xx, before ack": worker_killed_before_ack,
    "3 Redis SIGKILL + restart from AOF": redis_restarted_with_aof,
    "4 Redis restart without persistence": redis_restarted_empty,
    "5 flaky link to Redis": flaky_link_to_redis,
    "6 flaky callback": flaky_callback,
    "7 poison entry": poison_entry,
    "8 SIGTERM under load": sigterm_under_load,
    "9 volume and fairness": volume_and_fairness,
    "10 trimming under backlog": trimming_under_backlog,
    "11 webhook churn": webhook_churn,
}
