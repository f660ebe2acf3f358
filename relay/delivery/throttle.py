"""A webhook's ``rateLimit``: at most that many deliveries a second, counted across all workers.

The budget lives in Redis (``Keys.rate_limit``): a GCRA state, one number per webhook, that the
``LEASE`` script advances on the server's clock. It allows a burst of one second's worth at most,
less the tokens a worker may hold, so no window of W seconds sees more than ``rate * (W + 1)``
deliveries whatever the number of workers.

A worker leases tokens in small batches (about a tenth of a second's worth, at most ``BATCH_MAX``)
and spends them locally: one Redis call serves a batch of deliveries. A token not spent within
``hold_seconds`` (a tenth of a second, or the time its batch stands for at the rate if longer)
is dropped, so a worker never saves tokens up into a burst; the burst allowed in Redis is one
second's worth less that hold. (A batch held only for the time it stands for, 5 ms for 50
tokens at 10,000/s, made a worker with any steady traffic lease every 5 ms and so take the whole
budget: with two such workers the limit bound at a fraction of its rate.)
When Redis grants none, ``take`` answers how long to wait: the delivery is put off (no attempt
counted), and this worker spreads the ones it puts off at the webhook's rate.

The next batch is leased ahead, in the background, once the batch in hand runs low (half of its
tokens left, or half of its hold): a delivery waits for a lease only when the webhook's
traffic came after a pause, or outran the batch leased ahead. (Leased only when the last batch
ran out, the lease was on the way of every delivery that found no token meanwhile: at 184
events/s on the shared 2-core VM, 19 % of them, waiting 20 ms at the median, 130 ms at p99.) A
batch leased ahead keeps its own hold, counted from its grant, so the bound above holds. It is
sized by the pace tokens were spent at since the last one (``ahead_size``): a worker whose
batches expire half spent is not charged a whole batch every half hold.

Time and randomness come in as a ``Clock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass

from relay.clock import Clock
from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.scripts import LEASE, run

BATCH_MAX = 50
BATCH_SECONDS = 0.1
"""A batch holds about this many seconds' worth of tokens (one token at least)."""
BURST_SECONDS = 1.0
"""The burst allowed beyond the rate, in seconds' worth of tokens."""
LOW = 0.5
"""The batch in hand runs low with this share of its tokens, or of its hold, left: the next one
is leased ahead. (A quarter was too late on the shared VM, whose lease round trips took 8-42 ms.)"""


def batch_size(rate: int) -> int:
    """Tokens leased in one Redis call for a webhook allowed ``rate`` deliveries a second. Pure."""
    return max(1, min(BATCH_MAX, int(rate * BATCH_SECONDS)))


def ahead_size(rate: int, spent: int, elapsed: float) -> int:
    """Tokens to lease ahead, ``spent`` tokens having gone in the last ``elapsed`` seconds: one
    hold's worth at that pace (a batch ahead is in hand half a hold or so), one at least, a batch
    at most. Pure."""
    if elapsed <= 0:
        return batch_size(rate)
    return max(1, min(batch_size(rate), math.ceil(round(spent * hold_seconds(rate) / elapsed, 6))))


def hold_seconds(rate: int) -> float:
    """How long a worker may spend a leased batch: ``BATCH_SECONDS``, or the time the batch
    stands for at ``rate`` if longer. Tokens granted in any W + hold seconds are at most
    ``rate * (W + hold + tolerance)``, and the tolerance is one second less the hold: no window
    of W seconds sees more than ``rate * (W + 1)`` deliveries. Pure."""
    return max(BATCH_SECONDS, batch_size(rate) / rate)


@dataclass(slots=True)
class _Stash:
    rate: int
    tokens: int
    until: float
    """Unix seconds after which the tokens left are dropped."""
    next_slot: float = 0.0
    """When this worker's next put-off delivery of the webhook should come back (unix seconds)."""
    refused_until: float = 0.0
    """Redis granted no token; it said one may be granted from then on (unix seconds)."""
    granted: int = 0
    """Tokens the batch in hand had when granted."""
    spent: int = 0
    """Tokens spent since ``counted_from`` (unix seconds): the pace a batch ahead is sized by."""
    counted_from: float = 0.0
    ahead: int = 0
    """Tokens of the batch leased ahead: spent once those in hand run out or expire."""
    ahead_until: float = 0.0


class Throttle:
    def __init__(self, redis: RedisClient, keys: Keys, clock: Clock) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self._stash: dict[int, _Stash] = {}
        self._leasing: dict[int, asyncio.Lock] = {}
        self._ahead: dict[int, asyncio.Task[None]] = {}
        """Leases ahead on the wire, by webhook."""

    def try_take(self, webhook_id: int, rate: int) -> bool:
        """Spend a token held locally, if any: no Redis call waited for (the next batch may be
        leased ahead, in the background)."""
        stash = self._stash.get(webhook_id)
        if stash is None or stash.rate != rate:
            return False
        now = self.clock.now()
        if stash.tokens <= 0 or now > stash.until:
            if stash.ahead <= 0 or now > stash.ahead_until:
                return False
            stash.tokens = stash.granted = stash.ahead
            stash.until, stash.ahead = stash.ahead_until, 0
        stash.tokens -= 1
        stash.spent += 1
        if webhook_id not in self._ahead and self._low(stash, now):
            self._ahead[webhook_id] = task = asyncio.create_task(self._lease_ahead(webhook_id, rate))
            task.add_done_callback(lambda _: self._ahead.pop(webhook_id, None))
        return True

    @staticmethod
    def _low(stash: _Stash, now: float) -> bool:
        """Whether the batch in hand runs low with no batch leased ahead, and Redis did not
        refuse the last lease."""
        if (stash.ahead > 0 and now <= stash.ahead_until) or now < stash.refused_until:
            return False
        hold = hold_seconds(stash.rate)
        return stash.tokens <= stash.granted * LOW or stash.until - now <= hold * LOW

    def _lock(self, webhook_id: int) -> asyncio.Lock:
        lock = self._leasing.get(webhook_id)
        if lock is None:
            if len(self._leasing) >= 10_000:
                self._leasing.clear()
            lock = self._leasing[webhook_id] = asyncio.Lock()
        return lock

    async def _lease_ahead(self, webhook_id: int, rate: int) -> None:
        """Lease the next batch while the one in hand lasts. A failure is left to the next
        ``take`` that finds no token (it leases, and meets the error itself)."""
        async with self._lock(webhook_id):
            stash = self._stash.get(webhook_id)
            if stash is None or stash.rate != rate or not self._low(stash, self.clock.now()):
                return
            hold, now = hold_seconds(rate), self.clock.now()
            want = ahead_size(rate, stash.spent, now - stash.counted_from)
            stash.spent, stash.counted_from = 0, now
            with contextlib.suppress(Exception):
                granted, wait_ms = await self._call(webhook_id, rate, want)
                now = self.clock.now()
                if granted:
                    stash.ahead, stash.ahead_until = granted, now + hold
                else:
                    stash.refused_until = now + wait_ms / 1000

    async def settled(self) -> None:
        """Until no lease ahead is on the wire."""
        while self._ahead:
            await asyncio.gather(*self._ahead.values(), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel the leases ahead still on the wire."""
        for task in self._ahead.values():
            task.cancel()
        await self.settled()

    async def take(self, webhook_id: int, rate: int) -> float:
        """Spend a token: 0.0, or the seconds this delivery should be put off for.

        One lease per webhook at a time: deliveries that find no token while a lease is on the
        wire wait for it and spend its tokens, rather than each leasing (and wasting) a batch of
        their own. After Redis granted none, the deliveries put off until it said a token may be
        granted are spread without asking it again."""
        if self.try_take(webhook_id, rate):
            return 0.0
        async with self._lock(webhook_id):
            if self.try_take(webhook_id, rate):
                return 0.0
            stash = self._stash.get(webhook_id)
            now = self.clock.now()
            if stash is not None and stash.rate == rate and now < stash.refused_until:
                return self._put_off(stash, now, stash.refused_until)
            return await self._lease(webhook_id, rate)

    async def _call(self, webhook_id: int, rate: int, want: int) -> tuple[int, int]:
        """One LEASE of ``want`` tokens: the tokens granted, and (none granted) the ms to wait."""
        step_ms = 1000.0 / rate
        tolerance_ms = max(0.0, (BURST_SECONDS - hold_seconds(rate)) * 1000)
        granted, wait_ms = await run(
            self.redis,
            LEASE,
            [self.keys.rate_limit(webhook_id)],
            [repr(step_ms), repr(tolerance_ms), want],
        )
        return int(granted), int(wait_ms)

    async def _lease(self, webhook_id: int, rate: int) -> float:
        hold = hold_seconds(rate)
        granted, wait_ms = await self._call(webhook_id, rate, batch_size(rate))
        now = self.clock.now()
        stash = self._stash.get(webhook_id)
        if stash is None or stash.rate != rate:
            if len(self._stash) >= 10_000:
                self._stash.clear()
            stash = self._stash[webhook_id] = _Stash(rate, 0, now, counted_from=now)
        stash.ahead = 0  # none, or expired: try_take would have spent it
        stash.spent, stash.counted_from = 0, now
        if granted:
            stash.tokens, stash.granted, stash.until = granted - 1, granted, now + hold
            return 0.0
        stash.tokens = 0
        stash.refused_until = now + wait_ms / 1000
        return self._put_off(stash, now, stash.refused_until)

    @staticmethod
    def _put_off(stash: _Stash, now: float, earliest: float) -> float:
        slot = max(earliest, stash.next_slot)
        stash.next_slot = slot + 1 / stash.rate
        return max(math.ulp(1.0), slot - now)
