"""Per callback host: at most ``limit`` deliveries in flight; the others wait in the host's queue,
unless that wait would be long or the host would hold too much of the process.

The wait is estimated from the host's recent attempt durations (a moving average): a delivery
that would wait more than ``max_wait`` seconds is not made to wait (it would hold a process slot
that other hosts' deliveries need): ``enter`` answers False and the worker defers it through the
scheduled set, without counting an attempt, for about as long as it would have waited. A fast
host keeps a deep queue; a slow or dead one keeps almost none, so it delays only its own
deliveries. Before its first attempt ends, when nothing is known of it, a host may hold at most
``share`` slots (in flight and waiting).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from yarl import URL

SMOOTHING = 0.2
"""Weight of the newest duration in a host's moving average."""


def host_of(url: str) -> str:
    """``host:port`` of a callback URL, the unit of per-host limits."""
    parsed = URL(url)
    return f"{(parsed.host or '').lower()}:{parsed.port}"


@dataclass
class _Host:
    active: int = 0
    waiting: deque[asyncio.Future[None]] = field(default_factory=deque)
    latency: float | None = None
    """Moving average of attempt durations, seconds; None before the first ends."""


class HostGates:
    def __init__(self, limit: int, share: int, max_wait: float = 1.0) -> None:
        self.limit = limit
        self.share = max(limit, share)
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

    def _admits(self, state: _Host, host: str) -> bool:
        if state.latency is None:  # nothing known yet: at most its share
            return state.active + len(state.waiting) < self.share
        return self.expected_wait(host) <= self.max_wait

    async def enter(self, host: str) -> bool:
        """Take a slot for ``host``, waiting in its queue if need be; False to put it off."""
        state = self._hosts.setdefault(host, _Host())
        if state.active < self.limit and not state.waiting:
            state.active += 1
            return True
        if not self._admits(state, host):
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        state.waiting.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.leave(host)  # the slot was handed over just as we were cancelled
            elif future in state.waiting:
                state.waiting.remove(future)
            raise
        return True

    def leave(self, host: str, seconds: float | None = None) -> None:
        """Give the slot back (to the first waiter, else to the pool); ``seconds``: how long the
        attempt took, for the host's average."""
        state = self._hosts[host]
        if seconds is not None:
            old = state.latency
            state.latency = seconds if old is None else old + SMOOTHING * (seconds - old)
        while state.waiting:
            future = state.waiting.popleft()
            if not future.done():
                future.set_result(None)  # the slot passes on; ``active`` is unchanged
                return
        state.active -= 1
        if state.active == 0 and (state.latency is None or state.latency <= self.max_wait):
            del self._hosts[host]  # forget a healthy idle host; a slow one is remembered

    def forget_idle(self) -> None:
        """Drop idle hosts' averages (call now and then: bounds memory over many hosts)."""
        for host in [h for h, s in self._hosts.items() if s.active == 0 and not s.waiting]:
            del self._hosts[host]
