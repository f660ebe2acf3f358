"""GET /metrics: the relay_* families of every stage after real traffic, with few, bounded labels."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import relay as relay_package
from relay.app import keys_for
from relay.clock import Clock
from relay.health import Backlog
from relay.keys import GROUP, Keys
from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.callbacks import signed
from tests.sink import Reply, Sink
from tests.traffic import (
    RunningRelay,
    basic,
    callbacks_of_every_kind,
    marked_body,
    private_settings,
    running_relay,
    subscribe,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
ALLOWED_LABELS = {"outcome", "status_class", "kind", "stream", "le", "quantile", "state"}
BUILD_LABELS = {"version", "python", "aiohttp", "redis_py"}
"""relay_build_info's only: one series per process, fixed at start."""
STREAM = re.compile(r"^[A-Za-z0-9_.-]+:\{p\d+\}:(events|deliveries)$")


async def scrape(relay: RunningRelay) -> tuple[Samples, str]:
    """GET /metrics without credentials; every relay_* sample by name and labels."""
    status, body = await relay.request("GET", "/metrics")
    assert status == 200
    text = body.decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("relay_"):
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, text


async def scrape_until(relay: RunningRelay, done: Callable[[Samples], bool], within: float = 5.0) -> Samples:
    """Scrape until ``done`` holds (a worker counts an attempt just after the sink saw it)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        samples, _ = await scrape(relay)
        if done(samples) or asyncio.get_running_loop().time() > deadline:
            return samples
        await asyncio.sleep(0.02)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


async def test_metrics_cover_callbacks_deliveries_and_groups_after_traffic(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """After callbacks (accepted, repeated, refused) and deliveries (a retry, a 410), /metrics
    counts each, with latency histograms and the consumer group's lag and pending per stream."""
    settings = private_settings(make_settings)
    sink = await Sink().start()
    try:
        async with running_relay(settings, redis, workers=1) as relay:
            await subscribe(relay, sink)
            before, _ = await scrape(relay)
            assert await callbacks_of_every_kind(relay) == [200, 200, 401, 200, 401, 401]
            await sink.wait_for(4, "/hook")  # two events: both first attempts fail, both retries pass
            await sink.wait_for(1, "/gone")
            after = await scrape_until(relay, lambda s: total(s, "relay_dead_letters_total", kind="gone") > 0)
            after = await scrape_until(
                relay, lambda s: grew(before, s, "relay_deliveries_total", outcome="delivered") >= 2
            )
    finally:
        await sink.close()
    assert grew(before, after, "relay_callbacks_total", outcome="accepted") == 2
    assert grew(before, after, "relay_callbacks_total", outcome="duplicate") == 1
    assert grew(before, after, "relay_callbacks_total", outcome="unauthorized") == 3
    assert grew(before, after, "relay_signature_failures_total") == 3
    assert grew(before, after, "relay_duplicates_total") == 1
    assert grew(before, after, "relay_events_enqueued_total") == 2
    assert grew(before, after, "relay_enqueue_seconds_count") == 3
    assert grew(before, after, "relay_deliveries_total", outcome="delivered", status_class="2xx") >= 2
    assert grew(before, after, "relay_deliveries_total", status_class="5xx") >= 2
    assert grew(before, after, "relay_delivery_seconds_count") >= 5
    assert grew(before, after, "relay_retries_scheduled_total") >= 2
    assert grew(before, after, "relay_webhooks_disabled_total") >= 1
    assert grew(before, after, "relay_dead_letters_total", kind="gone") >= 1
    for stream in keys_for(settings).all_events():
        assert ("relay_group_lag", (("stream", stream),)) in after
        assert ("relay_group_pending", (("stream", stream),)) in after
        assert ("relay_group_lag_seconds", (("stream", stream),)) in after
    assert ("relay_retry_set_size", ()) in after
    assert ("relay_dead_letters_stored", ()) in after


async def test_metric_labels_are_few_and_bounded(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """No relay_* label names an event, a webhook or a URL: only outcome, status class, kind and
    stream (one per partition), so the number of series does not grow with traffic."""
    settings = private_settings(make_settings)
    async with running_relay(settings, redis, workers=1) as relay:
        await callbacks_of_every_kind(relay)
        samples, _ = await scrape(relay)
    for (name, labels), _value in samples.items():
        allowed = BUILD_LABELS if name == "relay_build_info" else ALLOWED_LABELS
        assert {k for k, _ in labels} <= allowed, name
        for key, value in labels:
            assert "/" not in value and "http" not in value, (name, key, value)
            if key == "stream":
                assert STREAM.match(value), value


async def test_metrics_need_no_credentials_and_speak_prometheus(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """/metrics answers without Authorization, in Prometheus' text format, on a listener-only process."""
    settings = make_settings()
    async with (
        running_relay(settings, redis) as relay,
        relay.session.get(relay.base + "/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        assert "relay_callbacks_total" in await response.text()


async def test_build_info_names_the_versions(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """relay_build_info is 1, labelled with the relay's version and those of Python, aiohttp, redis-py."""
    async with running_relay(make_settings(), redis) as relay:
        samples, _ = await scrape(relay)
    ((labels, value),) = [(dict(ls), v) for (n, ls), v in samples.items() if n == "relay_build_info"]
    assert value == 1
    assert set(labels) == BUILD_LABELS
    assert labels["version"] == relay_package.__version__
    assert all(labels.values())


def lag_seconds(stream: str) -> float | None:
    return REGISTRY.get_sample_value("relay_group_lag_seconds", {"stream": stream})


async def test_lag_seconds_is_the_age_of_the_oldest_entry_not_acknowledged(
    redis: RedisClient, keys: Keys
) -> None:
    """relay_group_lag_seconds: now minus when the oldest entry not acknowledged (read or not) was
    added; it grows with the clock while the entry waits, and is 0 once every entry is acknowledged."""
    stream = keys.events(0)
    await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    for entry_id in ("1000-0", "4000-0"):  # added at unix 1 s and 4 s
        await redis.xadd(stream, {"n": "1"}, id=entry_id)
    now = [11.0]
    backlog = Backlog(redis=redis, keys=keys, clock=Clock(now=lambda: now[0]))
    await backlog.observe()
    assert lag_seconds(stream) == 10.0
    await redis.xreadgroup(GROUP, "c", {stream: ">"}, count=1)  # read, not acknowledged
    now[0] = 21.0
    await backlog.observe()
    assert lag_seconds(stream) == 20.0
    await redis.xack(stream, GROUP, "1000-0")
    await backlog.observe()
    assert lag_seconds(stream) == 17.0  # the next one's age
    await redis.xreadgroup(GROUP, "c", {stream: ">"}, count=1)
    await redis.xack(stream, GROUP, "4000-0")
    await backlog.observe()
    assert lag_seconds(stream) == 0.0
    assert REGISTRY.get_sample_value("relay_group_lag", {"stream": stream}) == 0


async def add_webhook(relay: RunningRelay, sink: Sink, path: str) -> None:
    body = {"name": path, "resource": "OutboundCall", "events": ["Finished"], "callback": sink.url(path)}
    status, reply = await relay.request("POST", "/v2/webhooks", json=body, headers=basic())
    assert status == 201, reply


async def test_retry_set_and_dead_letters_stored_follow_the_deliveries(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """A delivery that fails waits in the retry set (relay_retry_set_size 1); one answered 410 is a
    dead letter (relay_dead_letters_stored 1)."""
    settings = private_settings(make_settings, retry_schedule="1h")
    sink = await Sink().start()
    try:
        async with running_relay(settings, redis, workers=1) as relay:
            sink.always("/down", Reply(500))
            sink.always("/gone", Reply(410))
            await add_webhook(relay, sink, "/down")
            await add_webhook(relay, sink, "/gone")
            before, _ = await scrape(relay)
            body = marked_body()
            assert await relay.post_callback(body, signed(body)) == 200
            after = await scrape_until(
                relay,
                lambda s: (
                    total(s, "relay_retry_set_size") == 1 and total(s, "relay_dead_letters_stored") == 1
                ),
            )
    finally:
        await sink.close()
    assert (total(before, "relay_retry_set_size"), total(before, "relay_dead_letters_stored")) == (0, 0)
    assert (total(after, "relay_retry_set_size"), total(after, "relay_dead_letters_stored")) == (1, 1)


async def test_workers_report_breaker_states(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """relay_breakers{state}, from a worker process: both webhooks closed, then the failing one open."""
    settings = private_settings(make_settings, retry_schedule="1h", breaker_failures=1)
    sink = await Sink().start()
    try:
        async with running_relay(settings, redis, workers=1) as relay:
            sink.always("/down", Reply(500))
            await add_webhook(relay, sink, "/down")
            await add_webhook(relay, sink, "/up")
            closed = await scrape_until(relay, lambda s: total(s, "relay_breakers", state="closed") == 2)
            body = marked_body()
            assert await relay.post_callback(body, signed(body)) == 200
            opened = await scrape_until(relay, lambda s: total(s, "relay_breakers", state="open") == 1)
    finally:
        await sink.close()
    assert [total(closed, "relay_breakers", state=s) for s in ("closed", "open", "half_open")] == [2, 0, 0]
    assert [total(opened, "relay_breakers", state=s) for s in ("closed", "open", "half_open")] == [1, 1, 0]
