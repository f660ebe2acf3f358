"""singleUse webhooks: at most one successful delivery, however many workers race for it.

Before its POST a delivery takes the webhook's lease, in one script that also checks the webhook
still exists: a worker whose cached view still holds a webhook another deleted sees it gone.
While the lease is held the others put their deliveries off (no attempt counted). After a 2xx
the lease becomes ``used`` for a day and the webhook is deleted; after a failure it is released,
so a later delivery may try.
"""

from __future__ import annotations

import enum

from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.scripts import ACQUIRE, SETTLE, run

USED_TTL_MS = 86_400_000


class Lease(enum.Enum):
    TAKEN = 1
    GONE = 0
    BUSY = -1


class SingleUse:
    def __init__(self, redis: RedisClient, keys: Keys, ttl: float) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_ms = max(1, int(ttl * 1000))

    async def acquire(self, webhook_id: int, token: str) -> Lease:
        keys = [self.keys.webhooks, self.keys.single_use_lease(webhook_id)]
        return Lease(int(await run(self.redis, ACQUIRE, keys, [webhook_id, token, self.ttl_ms])))

    async def used(self, webhook_id: int, token: str) -> None:
        await run(self.redis, SETTLE, [self.keys.single_use_lease(webhook_id)], [token, USED_TTL_MS])

    async def release(self, webhook_id: int, token: str) -> None:
        await run(self.redis, SETTLE, [self.keys.single_use_lease(webhook_id)], [token, ""])
