"""The benchmark harness's pieces, briefly: its pure numbers, its payload against the real
listener, its preload against the real stream format, its minimal loop, wrk's script. No timing
is asserted: these say the harness measures what it claims to, not how fast anything is."""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from bench.e2e import e2e_latencies_ms
from bench.hops import Timeline, breakdown, record_times
from bench.load import Wrk
from bench.loadgen import closed_loop
from bench.matching import filtered
from bench.minimal_loop import MinimalLoop, RelayPlumbingLoop
from bench.payload import SECRET, Signer, token_of
from bench.preload import preload
from bench.procs import parse_stat_cpu, parse_status_kib
from bench.profile import frame_name, summarise
from bench.redis_cost import cost, parse_sample
from bench.servers import fails_first
from bench.stats import Figure, backlog_is_flat, percentile, ratios, slope
from bench.subscriber import whole_hundreds
from bench.view_refresh import measure
from relay.events import StreamEvent, events_of, outbound_body
from relay.ingest.parsing import parse_callback
from relay.keys import GROUP, Keys
from relay.settings import Settings
from relay.signing import CALLFIRE_HEADER, matching_secret
from relay.store.attempts import attempt_record, matched_record
from tests.callbacks import as_stored
from tests.sink import Sink

URL = "/callbacks/callfire"


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([5, 1, 3, 2, 4], 50, 3), ([5, 1, 3, 2, 4], 100, 5), (list(range(1, 101)), 99, 99), ([7], 1, 7)],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    """Percentiles take the nearest rank of the sorted values."""
    assert percentile(values, q) == expected


def test_figure_is_median_with_min_and_max() -> None:
    """A figure is the median of its runs with the lowest and highest; NaN runs are left out."""
    figure = Figure.of([3.0, 1.0, math.nan, 10.0])
    assert (figure.median, figure.low, figure.high) == (3.0, 1.0, 10.0)


def test_ratios_pair_runs_one_to_one() -> None:
    """Ratios are taken run by run, a zero denominator giving NaN."""
    got = ratios([2.0, 3.0, 1.0], [4.0, 3.0, 0.0])
    assert got[:2] == [0.5, 1.0] and math.isnan(got[2])


@pytest.mark.parametrize(
    ("backlog", "flat"),
    [([10, 12, 9, 11, 10], True), ([0, 100, 200, 300, 400], False), ([5000, 5000, 5000], False)],
)
def test_backlog_flatness(backlog: list[float], flat: bool) -> None:
    """Flat: no steady growth, and never more than a second of traffic waiting (rate 1000/s)."""
    times = [float(t) for t in range(len(backlog))]
    assert backlog_is_flat(times, backlog, offered_rate=1000) is flat


def test_slope_of_a_line() -> None:
    """The least-squares slope of points on a line is the line's slope."""
    assert slope([0, 1, 2, 3], [1, 3, 5, 7]) == pytest.approx(2.0)


def test_e2e_latency_pairs_acks_with_arrivals() -> None:
    """Latency is arrival minus 2xx, per call id; an acknowledged id that never arrived is counted."""
    latencies, lost = e2e_latencies_ms([[1, 1_000_000], [2, 2_000_000]], [[1, 3_000_000]])
    assert latencies == [2.0] and lost == 1


def test_hops_read_the_relays_own_records() -> None:
    """An event's log, newest first, as the relay writes it: the read is its matched record's
    time, the POST's start its 2xx attempt's time less the attempt's latency (a failed attempt
    before it does not count)."""
    log = [
        attempt_record(at=1_500, delivery_id="d", attempt=2, outcome="delivered", status=200,
                       seconds=0.004, error=None),
        attempt_record(at=1_200, delivery_id="d", attempt=1, outcome="retry", status=500,
                       seconds=0.002, error=None),
        matched_record(at=1_100, webhook_ids=[1], entry="0/1-0"),
    ]  # fmt: skip
    assert record_times(log) == (1_100.0, 1_496.0)
    assert all(math.isnan(t) for t in record_times([]))


def test_hop_breakdown_says_where_the_slowest_spent_their_time() -> None:
    """99 events 10 ms end to end and one 110 ms, whose read came 100 ms late: the hops' p50s
    are the common case's, and the slowest 1 %'s median puts the 100 ms in appended -> read."""
    lines = [Timeline(n, 0, 1, 3, 2, 5, 13) for n in range(99)] + [Timeline(99, 0, 1, 3, 102, 105, 113)]
    hops = breakdown(lines)
    assert hops["appended -> read"]["p50"] == 1
    assert hops["appended -> read"]["slowest_1pct_p50"] == 101
    assert hops["read -> posted"]["slowest_1pct_p50"] == 3
    assert hops["answered -> arrived"]["p99"] == 10
    assert hops["answered -> arrived"]["slowest_1pct_p50"] == 110


def test_proc_stat_and_status_parsing() -> None:
    """CPU seconds are utime + stime over the clock ticks; a comm with spaces does not confuse it."""
    fields = ["S"] + ["0"] * 10 + ["150", "50"] + ["0"] * 10
    assert parse_stat_cpu("42 (relay (serve) x) " + " ".join(fields)) == pytest.approx(200 / 100)
    assert parse_status_kib("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t1024 kB\n", "VmHWM") == 2048


def test_profile_sums_self_and_total_shares() -> None:
    """Collapsed stacks give each function's own share and its share with what it calls."""
    collapsed = "main (a.py:1);work (b.py:2) 3\nmain (a.py:1) 1\n"
    profile = summarise(collapsed)
    assert profile.samples == 4
    assert dict(profile.self_share) == {"b.py:work": 0.75, "a.py:main": 0.25}
    assert dict(profile.total_share)["a.py:main"] == 1.0
    assert frame_name("handle (aiohttp/web.py:510)") == "aiohttp/web.py:handle"


def test_payload_is_a_signed_callback_of_about_a_kilobyte() -> None:
    """Each body verifies with the relay's own check, parses, is ~1 KB, and names its call id."""
    signer = Signer(1_700_000_000_000)
    body, headers = signer.signed(7420017300281076000)
    assert matching_secret(headers[CALLFIRE_HEADER], body, [SECRET.encode()]) == SECRET.encode()
    assert 800 <= len(body) <= 1300
    [event] = events_of(parse_callback(body), 1)
    assert token_of(outbound_body(event, 1, "hook")) == 7420017300281076000
    assert signer.body(1) != signer.body(2)


async def test_generator_posts_callbacks_the_listener_accepts(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings], redis: Any, keys: Keys
) -> None:
    """The aiohttp generator's callbacks are accepted by the real listener and land on the stream."""
    client = await make_client(make_settings(callfire_secrets=SECRET))
    tally, _ = await closed_loop(str(client.make_url(URL)), 4, 0.3, first_id=1)
    assert tally.ok > 0 and tally.errors == 0
    stored = sum([await redis.xlen(s) for s in keys.all_events()])
    assert stored >= tally.ok


async def test_preloaded_events_are_relay_events(redis: Any, prefix: str) -> None:
    """Preloaded entries parse as the relay's stream events, each with its own call id and its
    own event id (so each has an attempt log of its own, as ingested events do)."""
    keys = Keys(prefix, 2)
    await preload(redis, keys, 10, first_id=500, now_ms=int(time.time() * 1000), chunk=4)
    entries = [f for s in keys.all_events() for _, f in await redis.xrange(s)]
    events = [StreamEvent.from_fields(f) for f in entries]
    assert len(events) == 10
    assert entries == [as_stored(e.to_fields()) for e in events]  # the relay's format, byte for byte
    assert {e.resource for e in events} == {"OutboundCall"}
    assert len({e.callback for e in events}) == 10
    assert len({e.id for e in events}) == 10
    assert len({parse_callback(b'{"events":[' + e.json + b"]}").events[0].text for e in events}) == 10


@pytest.mark.parametrize("kind", [MinimalLoop, RelayPlumbingLoop], ids=["aiohttp", "relay-client"])
async def test_minimal_loop_forwards_and_acknowledges(
    redis: Any, prefix: str, kind: type[MinimalLoop]
) -> None:
    """Either minimal loop posts every preloaded event to the sink and acknowledges them all."""
    keys = Keys(prefix, 2)
    sink = await Sink().start()
    loop = kind(redis, keys, sink.url("/minimal"))
    await loop.ensure_groups()
    await preload(redis, keys, 50, first_id=1, now_ms=int(time.time() * 1000))
    task = asyncio.create_task(loop.run())
    try:
        await sink.wait_for(50, path="/minimal")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            pending = [(await redis.xpending(s, GROUP))["pending"] for s in keys.all_events()]
            if sum(pending) == 0:
                break
            await asyncio.sleep(0.02)
        assert sum(pending) == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sink.close()


def test_the_realistic_subscriber_fails_one_first_attempt_in_a_hundred() -> None:
    """Call ids divisible by 100 are answered 500 (first attempt only: the sink notes them)."""
    failing = [token for token in range(1000, 1300) if fails_first(token, 100)]
    assert failing == [1000, 1100, 1200]
    assert not fails_first(None, 100) and not fails_first(1000, 0)


def test_the_steady_rate_makes_exactly_one_percent_fail() -> None:
    """Each generator process sends whole hundreds of call ids at the rate chosen: 1 % exactly."""
    for wanted in (20.0, 245.0, 267.0, 3_000.0):
        rate = whole_hundreds(wanted, 6.0, 2)
        per_process = round(rate / 2 * 6.0)  # as bench.loadgen counts them
        assert per_process % 100 == 0 and abs(rate - wanted) <= 100 / 6
        assert sum(fails_first(n, 100) for n in range(per_process)) * 100 == per_process


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
async def test_wrk_script_posts_signed_callbacks(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """wrk with post.lua sends callbacks the listener accepts (no non-2xx answers)."""
    client = await make_client(make_settings(callfire_secrets=SECRET))
    wrk = Wrk.prepared(tmp_path, 2000, int(time.time() * 1000))
    result = await wrk.closed([str(client.make_url(URL))], 4, 1)
    assert result.requests > 0 and result.errors == 0


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
async def test_view_refresh_measures_each_refresh(sealed: bool) -> None:
    """bench.view_refresh loads a view of the stored webhooks and times one refresh per change."""
    key = Fernet.generate_key().decode() if sealed else None
    result = await measure(30, 3, key)
    assert len(result["refresh"]) == 3 and all(t > 0 for t in result["refresh"])
    assert result["cold"] > 0


async def test_filtered_matching_views_hold_the_filtered_webhooks() -> None:
    """The filtered-matching benchmark's two views both match exactly its filtered webhooks (its
    own assertion), and it reports both timings and their ratio."""
    alone, crowd, ratio = await filtered(200, int(time.time() * 1000), runs=1)
    assert len(alone.runs) == len(crowd.runs) == len(ratio.runs) == 1


def test_redis_cost_divides_cpu_and_commands_by_events() -> None:
    """Redis's CPU and each command's calls and time between two samples, per event, costliest
    first; commands not called in between are left out."""
    before = parse_sample(
        {"used_cpu_user": 1.0, "used_cpu_sys": 0.5},
        {"cmdstat_xadd": {"calls": 10, "usec": 100}, "cmdstat_get": {"calls": 5, "usec": 5}},
    )
    after = parse_sample(
        {"used_cpu_user": 1.002, "used_cpu_sys": 0.501},
        {
            "cmdstat_xadd": {"calls": 110, "usec": 600},
            "cmdstat_get": {"calls": 5, "usec": 5},
            "cmdstat_evalsha": {"calls": 2, "usec": 900},
        },
    )
    found = cost(before, after, 100)
    assert round(found.cpu_us, 6) == 30.0
    assert found.commands == {"evalsha": (0.02, 9.0), "xadd": (1.0, 5.0)}
