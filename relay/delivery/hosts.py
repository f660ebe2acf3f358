"""Per callback host: at most ``limit`` deliveries in flight; the others wait in the host's queue
in the process, unless that wait would be long.

The wait is estimated from the host's recent attempt durations (a moving average): a delivery
that would wait more than ``max_wait`` seconds is not made to wait (it would hold a process slot
that other hosts' deliveries need): ``enter`` answers False and the worker defers it through the
scheduled set, without counting an attempt, for about as long as it would have waited. A fast
host therefore keeps a queue as deep as the process lets it (one busy subscriber never bounces
its deliveries through Redis while the process has room); a slow or dead one keeps almost none.

A host nothing is known of yet queues freely; if its first attempt has not ended within
``max_wait``, that wait is taken as its duration so far, and the queue is cut back to what such
a host may keep: the rest are put off. Whenever a host's average grows, the queue is cut back
likewise, so a host turning slow holds the process for at most about ``max_wait``.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass, field

from yarl import URL

SMOOTHING = 0.2
"""Weight of the newest duration in a host's moving average."""


def host_of(url: str) -> str:
    """``host:port`` of a callback URL, the unit of per-host limits."""
    parsed = URL(url)
    return f"{(parsed.host or '').lower()}:{parsed.port}"


@dataclass(kw_only=True)
class _Host:
    active: int = 0
    waiting: deque[asyncio.Future[bool]] = field(default_factory=deque)
    latency: float | None = None
    """Moving average of attempt durations, seconds; None before anything is known."""
    measured: bool = False
    """False while ``latency`` is only how long the first attempt has been going."""
    overdue: asyncio.TimerHandle | None = None


class HostGates:
    def __init__(self, limit: int, max_wait: float = 1.0) -> None:
        self.limit = limit
        self.max_wait = max_wait
        self._hosts: dict[str, _Host] = {}

    def busy(self, host: str) -> int:
        """Deliveries in flight or waiting for ``host``."""
        state = self._hosts.get(host)
        return 0 if state is None else state.active + len(state.waiting)

    def expected_wait(self, host: str) -> float:
        """Seconds one more delivery to ``host`` would wait for a slot (0: none)."""
        state = self._hosts.get(host)
        if state is None or state.active < self.limit:
            return 0.0
        rounds = (len(state.waiting) + 1) / self.limit
        return rounds * (state.latency if state.latency is not None else 0.0)

    def _depth(self, state: _Host) -> int:
        """How many may wait in the host's queue: each no longer than ``max_wait``."""
        if state.latency is None:
            return 1 << 30  # nothing known: the first answer (or ``max_wait``) decides
        if state.latency <= 0:
            return 1 << 30
        return math.floor(self.max_wait / state.latency * self.limit + 1e-9)

    def try_enter(self, host: str) -> bool:
        """Take a slot for ``host`` if one is free now (no queue): the common case, no await."""
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host()
        if state.active < self.limit and not state.waiting:
            state.active += 1
            return True
        return False

    async def enter(self, host: str) -> bool:
        """Take a slot for ``host``, waiting in its queue if need be; False to put it off."""
        if self.try_enter(host):
            return True
        state = self._hosts[host]
        if len(state.waiting) >= self._depth(state):
            return False
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        state.waiting.append(future)
        if state.latency is None and state.overdue is None:
            state.overdue = asyncio.get_running_loop().call_later(self.max_wait, self._overdue, host)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.result():
                self.leave(host)  # the slot was handed over just as we were cancelled
            elif future in state.waiting:
                state.waiting.remove(future)
            raise

    def leave(self, host: str, seconds: float | None = None) -> None:
        """Give the slot back (to the first waiter, else to the pool); ``seconds``: how long the
        attempt took, for the host's average."""
        state = self._hosts[host]
        if seconds is not None:
            self._measured(state, seconds)
        while state.waiting:
            future = state.waiting.popleft()
            if not future.done():
                future.set_result(True)  # the slot passes on; ``active`` is unchanged
                return
        state.active -= 1
        if state.active == 0 and (state.latency is None or state.latency <= self.max_wait):
            self._forget(host)  # a healthy idle host; a slow one is remembered

    def _measured(self, state: _Host, seconds: float) -> None:
        old = state.latency
        if old is None or not state.measured:
            state.latency = max(seconds, old or 0.0)
        else:
            state.latency = old + SMOOTHING * (seconds - old)
        state.measured = True
        if state.overdue is not None:
            state.overdue.cancel()
            state.overdue = None
        if old is None or state.latency > old:
            self._cut(state)

    def _overdue(self, host: str) -> None:
        """The first attempt has gone on for ``max_wait``: the host is at least that slow."""
        state = self._hosts.get(host)
        if state is None:
            return
        state.overdue = None
        if state.latency is None:
            state.latency = self.max_wait
            self._cut(state)

    def _cut(self, state: _Host) -> None:
        """Put off (``enter`` answers False) the waiters past the queue's depth, newest first."""
        depth = self._depth(state)
        while len(state.waiting) > depth:
            future = state.waiting.pop()
            if not future.done():
                future.set_result(False)

    def _forget(self, host: str) -> None:
        state = self._hosts.pop(host)
        if state.overdue is not None:
            state.overdue.cancel()

    def forget_idle(self) -> None:
        """Drop idle hosts' averages (call now and then: bounds memory over many hosts)."""
        for host in [h for h, s in self._hosts.items() if s.active == 0 and not s.waiting]:
            self._forget(host)
