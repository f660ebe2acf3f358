"""Circuit breaking per webhook, shared by every worker.

After ``RELAY_BREAKER_FAILURES`` consecutive failed attempts (counted across all workers) the
webhook's breaker opens: its deliveries are put off without an attempt (paused deliveries are not
attempts). After a cool-down (``FIRST_COOLDOWN``, doubling after each failed probe up to
``RELAY_BREAKER_MAX_COOLDOWN``) one worker is granted the one probe; its success closes the
breaker, its failure opens it again for longer. 0 turns breaking off.

State lives in one Redis hash (``Keys.breakers``: webhook id -> its state as JSON; absent: closed
with no failure), changed only by the ``BREAKER`` script. A failed attempt's call (and a
success's, for a webhook with failures) goes with the next batch of acknowledgements and attempt
records (``Completer.along``): no round trip of its own, and the delivery does not wait for it.
Only a probe's grant (``check``, once an open breaker's cool-down is over) is a call of its own.

Each worker reads the hash now and then (``refresh``): so it pauses deliveries of a breaker
another opened without a Redis call, knows which webhooks have failures to clear on a success,
and reports ``relay_breakers{state}``. The script that opens or closes a breaker queues its
``Failing`` or ``Recovered`` notice (``relay.notices``) in the same step; one that decides to
disable the webhook queues its switch-off (done by the worker moving the notices).

Time comes in as a ``Clock``.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from relay import metrics
from relay.clock import Clock
from relay.delivery.acks import Completer
from relay.keys import Keys
from relay.notices import disabled_after
from relay.store.breakers import BREAKER
from relay.store.connect import RedisClient
from relay.store.scripts import run

log = structlog.get_logger("relay.delivery")

FIRST_COOLDOWN = 5.0
"""Seconds of the first cool-down (or RELAY_BREAKER_MAX_COOLDOWN if shorter)."""
STATES = ("closed", "open", "half_open")


class Change(enum.Enum):
    NONE = ""
    OPENED = "opened"
    """The breaker opened (from closed: ``Failing``)."""
    REOPENED = "reopened"
    """A probe failed: open again, for longer."""
    CLOSED = "closed"
    """A success closed an open breaker (``Recovered``)."""
    DISABLE = "disable"
    """Failing with no success for RELAY_DISABLE_AFTER: the webhook's switch-off is queued."""


@dataclass(frozen=True, slots=True)
class Verdict:
    go: bool
    wait: float = 0.0
    """When not ``go``: seconds until the breaker's next probe may be sent."""
    change: Change = Change.NONE


class Breakers:
    def __init__(
        self,
        redis: RedisClient,
        keys: Keys,
        *,
        batch: Completer,
        failures: int,
        max_cooldown: float,
        probe_lease: float,
        disable_after: float,
        clock: Clock,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.batch = batch
        self.wake = wake
        """Called when a change queued a notice: the worker moving them need not wait its round."""
        self._reason = disabled_after(disable_after)
        self.failures = failures
        self.first_ms = int(min(FIRST_COOLDOWN, max_cooldown) * 1000)
        self.max_ms = int(max_cooldown * 1000)
        self.lease_ms = max(1, int(probe_lease * 1000))
        self.disable_after_ms = int(disable_after * 1000)
        self.clock = clock
        self._known: dict[int, dict[str, int | str]] = {}
        """The hash as last read, with this worker's own changes since."""

    @property
    def on(self) -> bool:
        """Failures are counted: for the breaker, or to disable a webhook that keeps failing."""
        return self.failures > 0 or self.disable_after_ms > 0

    def may_skip(self, webhook_id: int) -> bool:
        """True when this worker knows of no failure of the webhook: no Redis call needed."""
        return not self.on or webhook_id not in self._known

    async def check(self, webhook_id: int) -> Verdict:
        """Before an attempt: go (closed, or this is the probe), or pause. A round trip only when
        this worker knows the breaker open and its cool-down over (the probe is granted once)."""
        if self.may_skip(webhook_id):
            return Verdict(True)
        state = self._known[webhook_id]
        now_ms = self.clock.now_ms()
        if state.get("state", "closed") == "closed":
            return Verdict(True)
        if state.get("state") == "open" and now_ms < int(state.get("until", 0)):
            return Verdict(False, (int(state["until"]) - now_ms) / 1000)
        reply = await run(self.redis, BREAKER, self._keys(), self._args("check", webhook_id))
        return self._learned(webhook_id, reply)

    def failed(self, webhook_id: int, notice: bytes = b"") -> asyncio.Future[Change]:
        """After a failed attempt, sent with the next batch. ``notice``: the context of the
        ``Failing`` notice an opening raises (``relay.notices.context``); empty, none is raised.
        The change comes in the future (logged here: the delivery need not wait for it)."""
        if not self.on:
            return _resolved(Change.NONE)
        return self._along("fail", webhook_id, notice)

    def succeeded(self, webhook_id: int, notice: bytes = b"") -> asyncio.Future[Change]:
        """After a 2xx: clears the failures (and closes the breaker, raising ``Recovered`` with
        ``notice`` unless empty) if any are known; sent with the next batch."""
        if self.may_skip(webhook_id):
            return _resolved(Change.NONE)
        return self._along("ok", webhook_id, notice)

    def _keys(self) -> list[str]:
        return [self.keys.breakers, self.keys.notices, self.keys.notice_seq]

    def _args(self, op: str, webhook_id: int, notice: bytes = b"") -> list[Any]:
        now_ms = self.clock.now_ms()
        head = [op, webhook_id, now_ms, self.failures, self.first_ms, self.max_ms, self.lease_ms]
        return [*head, self.disable_after_ms, notice, self._reason]

    def _learned(self, webhook_id: int, reply: Any) -> Verdict:
        go, wait_ms, change, raw = reply
        if raw:
            self._known[webhook_id] = orjson.loads(raw)
        else:
            self._known.pop(webhook_id, None)
        return Verdict(bool(go), int(wait_ms) / 1000, Change(_text(change)))

    def _along(self, op: str, webhook_id: int, notice: bytes) -> asyncio.Future[Change]:
        reply = self.batch.along(BREAKER, self._keys(), self._args(op, webhook_id, notice))
        change: asyncio.Future[Change] = asyncio.get_running_loop().create_future()

        def replied(done: asyncio.Future[Any]) -> None:
            if done.cancelled():
                change.cancel()
                return
            error = done.exception()
            if error is not None:  # a failure not counted, or a success not cleared: no harm kept
                log.warning("circuit breaker not updated", webhook_id=webhook_id, error=type(error).__name__)
                change.set_exception(error)
                change.exception()  # marked retrieved: the delivery that queued it does not wait
                return
            verdict = self._learned(webhook_id, done.result())
            self._report(webhook_id, verdict.change)
            change.set_result(verdict.change)

        reply.add_done_callback(replied)
        return change

    def _report(self, webhook_id: int, change: Change) -> None:
        if change is Change.OPENED:
            self.wake()
            log.warning(
                "circuit breaker opened: the webhook's deliveries are paused",
                webhook_id=webhook_id,
                failures=self.failures,
            )
        elif change is Change.REOPENED:
            log.info("circuit breaker probe failed; paused for longer", webhook_id=webhook_id)
        elif change is Change.CLOSED:
            self.wake()
            log.warning("circuit breaker closed: the webhook answers again", webhook_id=webhook_id)
        elif change is Change.DISABLE:
            self.wake()

    async def refresh(self, *, total: int) -> None:
        """Read every breaker's state (the webhooks with failures only); set the gauge, of
        ``total`` webhooks."""
        raw = await self.redis.hgetall(self.keys.breakers)
        known = {int(k): orjson.loads(v) for k, v in raw.items()}
        self._known = known
        counts = dict.fromkeys(STATES, 0)
        now_ms = self.clock.now_ms()
        for state in known.values():
            name = str(state.get("state", "closed"))
            if name == "half_open" and now_ms >= int(state.get("until", 0)):
                name = "open"  # its probe was lost: the next check grants another
            if name != "closed":
                counts[name] += 1
        counts["closed"] = max(0, total - counts["open"] - counts["half_open"])
        for name, count in counts.items():
            metrics.BREAKERS.labels(name).set(count)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _resolved(change: Change) -> asyncio.Future[Change]:
    done: asyncio.Future[Change] = asyncio.get_running_loop().create_future()
    done.set_result(change)
    return done
