"""GET /metrics: the relay_* families of every stage after real traffic, with few, bounded labels."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from relay.app import keys_for
from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.sink import Sink
from tests.traffic import RunningRelay, callbacks_of_every_kind, private_settings, running_relay, subscribe

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
ALLOWED_LABELS = {"outcome", "status_class", "kind", "stream", "le", "quantile", "state"}
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
        assert {k for k, _ in labels} <= ALLOWED_LABELS, name
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
