"""The process's bound on deliveries in flight: readers read only while there is room."""

from __future__ import annotations

import asyncio


class Capacity:
    """A soft limit: an entry that fans out to many webhooks may go past it; reading then waits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._room = asyncio.Event()
        self._room.set()

    def room(self) -> int:
        return max(0, self.limit - self.used)

    def take(self, n: int) -> None:
        self.used += n
        if self.used >= self.limit:
            self._room.clear()

    def give(self, n: int) -> None:
        self.used -= n
        if self.used < self.limit:
            self._room.set()

    async def wait(self) -> None:
        """Until there is room for one more."""
        await self._room.wait()
