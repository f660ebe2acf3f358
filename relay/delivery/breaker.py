"""Circuit breaking per webhook, shared by every worker.

After ``RELAY_BREAKER_FAILURES`` consecutive failed attempts (counted across all workers) the
webhook's breaker opens: its deliveries are put off without an attempt (paused deliveries are not
attempts). After a cool-down (``FIRST_COOLDOWN``, doubling after each failed probe up to
``RELAY_BREAKER_MAX_COOLDOWN``) one worker is granted the one probe; its success closes the
breaker, its failure opens it again for longer. 0 turns breaking off.

State lives in one Redis hash (``Keys.breakers``: webhook id -> its state as JSON; absent: closed
with no failure), changed only by the ``BREAKER`` script. Each worker reads the hash now and then
(``refresh``): so it pauses deliveries of a breaker another opened without a Redis call, knows
which webhooks have failures to clear on a success, and reports ``relay_breakers{state}``. The
script that opens or closes a breaker queues its ``Failing`` or ``Recovered`` notice
(``relay.notices``) in the same step.

Time comes in as a ``Clock``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import orjson

from relay import metrics
from relay.clock import Clock
from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.scripts import BREAKER, run

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
    """Failing with no success for RELAY_DISABLE_AFTER: the webhook is to be switched off."""


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
        failures: int,
        max_cooldown: float,
        probe_lease: float,
        disable_after: float,
        clock: Clock,
    ) -> None:
        self.redis = redis
        self.keys = keys
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
        """Before an attempt: go (closed, or this is the probe), or pause."""
        if self.may_skip(webhook_id):
            return Verdict(True)
        state = self._known[webhook_id]
        now_ms = self.clock.now_ms()
        if state.get("state") == "open" and now_ms < int(state.get("until", 0)):
            return Verdict(False, (int(state["until"]) - now_ms) / 1000)
        return await self._call("check", webhook_id)

    async def failed(self, webhook_id: int, notice: bytes = b"") -> Change:
        """After a failed attempt. ``notice``: the context of the ``Failing`` notice an opening
        raises (``relay.notices.context``); empty, none is raised."""
        if not self.on:
            return Change.NONE
        return (await self._call("fail", webhook_id, notice)).change

    async def succeeded(self, webhook_id: int, notice: bytes = b"") -> Change:
        """After a 2xx: clears the failures (and closes the breaker, raising ``Recovered`` with
        ``notice`` unless empty) if any are known."""
        if self.may_skip(webhook_id):
            return Change.NONE
        return (await self._call("ok", webhook_id, notice)).change

    async def _call(self, op: str, webhook_id: int, notice: bytes = b"") -> Verdict:
        now_ms = self.clock.now_ms()
        args: list[int | str | bytes] = [op, webhook_id, now_ms, self.failures, self.first_ms, self.max_ms]
        args += [self.lease_ms, self.disable_after_ms, notice]
        keys = [self.keys.breakers, self.keys.notices, self.keys.notice_seq]
        go, wait_ms, change, raw = await run(self.redis, BREAKER, keys, args)
        if raw:
            self._known[webhook_id] = orjson.loads(raw)
        else:
            self._known.pop(webhook_id, None)
        return Verdict(bool(go), int(wait_ms) / 1000, Change(_text(change)))

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
