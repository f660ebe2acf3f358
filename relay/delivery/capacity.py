"""The process's bound on deliveries in flight. Readers reserve room before they read.

A reader waits until there is room for a worthwhile read (``least`` slots), reserves up to its
batch, reads at most that many entries and gives back what the read did not use; each delivery
gives its slot back when it ends. So however many readers share the bound, they never read past
it together. An entry that fans out to several webhooks takes a slot per delivery and may go past
the bound (it is a soft limit); reading then waits.
"""

from __future__ import annotations

import asyncio


class Capacity:
    def __init__(self, limit: int, least: int = 1) -> None:
        self.limit = limit
        self.least = max(1, min(least, limit))
        """The room a reader waits for: fewer slots would make reads too small to be worth it."""
        self.used = 0
        self._room = asyncio.Event()
        self._room.set()

    def room(self) -> int:
        return max(0, self.limit - self.used)

    def reserve(self, most: int) -> int:
        """Take up to ``most`` slots at once (no waiting); how many were taken."""
        n = min(most, self.room())
        self.take(n)
        return n

    def take(self, n: int) -> None:
        """Take ``n`` slots, past the limit if need be."""
        self.used += n
        if self.limit - self.used < self.least:
            self._room.clear()

    def give(self, n: int) -> None:
        self.used -= n
        if self.limit - self.used >= self.least:
            self._room.set()

    async def wait(self) -> None:
        """Until there is room for ``least`` slots."""
        await self._room.wait()
