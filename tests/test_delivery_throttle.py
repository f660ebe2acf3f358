"""relay.delivery.throttle: a webhook's rateLimit, leased from Redis in batches, held by every worker."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from relay.clock import Clock
from relay.delivery.throttle import Throttle, ahead_size, batch_size, hold_seconds
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.callbacks import call_event
from tests.delivery_harness import open_harness


def test_batch_is_a_tenth_of_a_second_of_tokens() -> None:
    """A batch is about 0.1 s of the rate: one token at least, 50 at most."""
    assert [batch_size(r) for r in (1, 5, 10, 100, 10_000)] == [1, 1, 1, 10, 50]


def test_a_batch_is_held_a_tenth_of_a_second_or_the_time_it_stands_for() -> None:
    """Tokens leased stay spendable 0.1 s (50 at 10,000/s), or longer where the batch stands for
    longer (1 token at 5/s: 0.2 s)."""
    assert [hold_seconds(r) for r in (1, 5, 100, 10_000)] == [1.0, 0.2, 0.1, 0.1]


def test_a_batch_ahead_is_a_holds_worth_at_the_pace_tokens_went() -> None:
    """At 10,000/s (a batch of 50, held 0.1 s): 3 tokens in 60 ms lease 5 ahead; 30 in 50 ms a
    whole batch; none spent yet, or no time counted, at least one / a whole batch."""
    assert ahead_size(10_000, 3, 0.06) == 5
    assert ahead_size(10_000, 30, 0.05) == 50
    assert ahead_size(10_000, 0, 0.05) == 1
    assert ahead_size(10_000, 3, 0.0) == 50


async def test_one_lease_serves_a_batch(redis: RedisClient, keys: Keys) -> None:
    """At rate 100 one Redis call leases ten tokens: nine more are then spent without waiting for
    Redis; the next batch, leased ahead once half was spent, serves the tenth."""
    throttle = Throttle(redis, keys, Clock(now=lambda: 1000.0))
    assert await throttle.take(7, 100) == 0.0
    taken = [throttle.try_take(7, 100) for _ in range(10)]
    assert taken == [True] * 9 + [False]  # the lease ahead has not run yet: nothing was awaited
    await throttle.settled()
    assert throttle.try_take(7, 100)


async def test_steady_traffic_never_waits_for_a_lease_after_the_first(redis: RedisClient, keys: Keys) -> None:
    """At 10,000/s (a batch of 50 held 0.1 s), a worker delivering every 20 ms finds a token in
    hand for every delivery after the first: the next batch was leased ahead, in the background,
    while the one in hand lasted (before, every fifth delivery found its batch expired and waited
    for a lease)."""
    now = [1000.0]
    throttle = Throttle(redis, keys, Clock(now=lambda: now[0]))
    assert await throttle.take(13, 10_000) == 0.0
    for _ in range(100):
        now[0] += 0.02
        assert throttle.try_take(13, 10_000)
        await throttle.settled()


async def test_stop_cancels_a_lease_ahead(redis: RedisClient, keys: Keys) -> None:
    """A lease ahead still on the wire at stop is cancelled and waited for."""
    throttle = Throttle(redis, keys, Clock(now=lambda: 1000.0))
    assert await throttle.take(14, 100) == 0.0
    while throttle.try_take(14, 100):
        pass
    await throttle.stop()
    assert not throttle.try_take(14, 100)  # the batch ahead never came


async def test_a_worker_with_steady_traffic_leaves_the_budget_to_others(
    redis: RedisClient, keys: Keys
) -> None:
    """At 10,000/s, a worker delivering one event every 20 ms is charged a batch per 0.1 s, not a
    batch per delivery (the whole rate): after 6 s of it a second worker still gets a batch."""
    now = [1000.0]
    busy = Throttle(redis, keys, Clock(now=lambda: now[0]))
    for _ in range(300):
        assert await busy.take(12, 10_000) == 0.0
        now[0] += 0.02
    other = Throttle(redis, keys, Clock(now=lambda: now[0]))
    assert await other.take(12, 10_000) == 0.0
    assert all(other.try_take(12, 10_000) for _ in range(batch_size(10_000) - 1))  # a whole batch


async def test_workers_share_the_budget(redis: RedisClient, keys: Keys) -> None:
    """Two throttles on one webhook together get one second's burst, then are told to wait."""
    first, second = Throttle(redis, keys, Clock()), Throttle(redis, keys, Clock())
    waits = [await (first if i % 2 else second).take(8, 5) for i in range(8)]
    assert waits[:5] == [0.0] * 5
    assert all(w > 0 for w in waits[5:])


async def test_put_off_deliveries_are_spread_at_the_rate(redis: RedisClient, keys: Keys) -> None:
    """Deliveries refused a token come back one interval (1/rate) apart, not all at once."""
    throttle = Throttle(redis, keys, Clock(now=lambda: 1000.0))
    for _ in range(5):
        assert await throttle.take(9, 5) == 0.0
    waits = [await throttle.take(9, 5) for _ in range(4)]
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(waits)]
    assert gaps == [0.2, 0.2, 0.2]


async def test_two_workers_keep_to_the_rate(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """Two workers, rateLimit 5, 40 queued events: all arrive, never above ~5/s in any window
    (one second's burst allowed)."""
    rate, total = 5, 40
    async with open_harness(make_settings, redis) as h:
        await h.webhook("/slow", rateLimit=rate)
        for _ in range(total):
            await h.publish(call_event())
        await h.start()
        await h.start()
        got = await h.sink.wait_for(total, "/slow", within=60)
        await h.settled(within=10)
        assert len({r.delivery_id for r in got}) == total
        times = sorted(r.at for r in got)
        for i, start in enumerate(times):
            for j in range(i, len(times)):
                window = times[j] - start
                assert j - i + 1 <= rate * window + rate + 1, (j - i + 1, window)
        assert times[-1] - times[0] >= (total - rate - 1) / rate


async def test_unlimited_webhook_is_not_held_back(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """A webhook without rateLimit beside a limited one gets its events without waiting for it."""
    async with open_harness(make_settings, redis) as h:
        await h.webhook("/slow", rateLimit=1)
        await h.webhook("/fast")
        for _ in range(10):
            await h.publish(call_event())
        await h.start()
        await h.sink.wait_for(10, "/fast", within=10)
        assert len(h.sink.at("/slow")) < 10


async def test_concurrent_takes_share_one_lease(redis: RedisClient, keys: Keys) -> None:
    """Ten deliveries finding no token at once make one lease of ten tokens, not ten leases."""
    throttle = Throttle(redis, keys, Clock(now=lambda: 1000.0))
    waits = await asyncio.gather(*(throttle.take(11, 100) for _ in range(10)))
    assert waits == [0.0] * 10
    other = Throttle(redis, keys, Clock(now=lambda: 1000.0))
    assert await other.take(11, 100) == 0.0  # the burst is barely touched: ten tokens of it spent
    assert other.try_take(11, 100)
