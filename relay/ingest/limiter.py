"""A per-client-address failure limiter: after ``limit`` failures inside one window, wait. Pure.

It never refuses a valid credential: the caller checks the signature (or the password) first and
asks the limiter only about a failure (``refusal``). So an attacker who shares an address with
CallFire (an ingress, a NAT) can make CallFire's bad requests wait, never its good ones.

Fixed windows: a client's first failure opens its window of ``window`` seconds; once the window
holds ``limit`` failures the client is blocked until the window ends. Time comes in as ``now``
(any monotonic clock, in seconds), so tests drive it by hand.

Memory is bounded: at most ``max_clients`` windows are kept. Windows are kept in the order they
opened, so the expired ones sit at the front and are dropped as new ones open; when the table is
full of live windows, the oldest is evicted (that client starts afresh: a bound on memory, not a
ban list).
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from relay.networks import ip_of

MAX_CLIENTS = 10_000


def client_key(remote: str | None) -> str:
    """The address a limit applies to: IPv4 as is, IPv6 by its /64 (one host's usual share),
    an IPv4-mapped IPv6 address as its IPv4 form."""
    if not remote:
        return "unknown"
    if ":" not in remote:
        return remote
    address = ip_of(remote)
    if address is None:
        return remote
    if address.version == 4:
        return str(address)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


@dataclass(slots=True)
class _Window:
    start: float
    failures: int


class FailureLimiter:
    """At most ``limit`` failures per ``window`` seconds per client; then ``retry_after`` > 0."""

    def __init__(self, limit: int, window: float, max_clients: int = MAX_CLIENTS) -> None:
        if limit < 1 or window <= 0 or max_clients < 1:
            raise ValueError("limit and max_clients must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._windows: dict[str, _Window] = {}
        """Insertion order is window-start order: expired windows sit at the front."""

    def __len__(self) -> int:
        return len(self._windows)

    def retry_after(self, client: str, now: float) -> float | None:
        """Seconds the client must wait before it may try again, or None when it may now."""
        if not self._windows:  # the hot path when nobody is failing
            return None
        entry = self._windows.get(client)
        if entry is None or entry.failures < self.limit:
            return None
        remaining = entry.start + self.window - now
        return remaining if remaining > 0 else None

    def failed(self, client: str, now: float) -> bool:
        """Count one failure; True when it is the one that blocks the client."""
        entry = self._windows.get(client)
        if entry is None or now >= entry.start + self.window:
            self._windows.pop(client, None)
            self._drop_expired(now)
            self._windows[client] = entry = _Window(now, 0)
        entry.failures += 1
        return entry.failures == self.limit

    def refusal(self, client: str, now: float) -> tuple[float | None, bool]:
        """One more failure from ``client``: (seconds to wait, for a 429, when it is held back
        already, else None after counting it, for a 401; True when this failure blocks it)."""
        wait = self.retry_after(client, now)
        if wait is not None:
            return wait, False
        return None, self.failed(client, now)

    def _drop_expired(self, now: float) -> None:
        while self._windows:
            oldest = next(iter(self._windows))
            if now < self._windows[oldest].start + self.window and len(self._windows) < self.max_clients:
                return
            del self._windows[oldest]


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds, never 0 (a client told 0 would come straight back)."""
    return str(max(1, math.ceil(seconds)))


def failure_limiter(limit: int, window: float) -> FailureLimiter | None:
    """The limiter ``RELAY_AUTH_FAILURE_LIMIT`` and ``_WINDOW`` ask for; None when the limit is 0."""
    return FailureLimiter(limit, window) if limit else None
