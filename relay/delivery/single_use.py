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
from relay.store.scripts import Script

USED_TTL_MS = 86_400_000

ACQUIRE = Script(
    """
-- KEYS[1] webhook table, KEYS[2] lease. ARGV[1] webhook id, ARGV[2] token, ARGV[3] ttl (ms).
-- 1: taken; 0: the webhook is gone or was used; -1: another delivery holds it.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local holder = redis.call('GET', KEYS[2])
if holder == 'used' then return 0 end
if holder then return -1 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""
)

SETTLE = Script(
    """
-- KEYS[1] lease. ARGV[1] token, ARGV[2] '' to release, or a ttl (ms) to mark it used.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], 'used', 'PX', ARGV[2]) end
return 1
"""
)


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
        return Lease(int(await ACQUIRE(self.redis, keys, [webhook_id, token, self.ttl_ms])))

    async def used(self, webhook_id: int, token: str) -> None:
        await SETTLE(self.redis, [self.keys.single_use_lease(webhook_id)], [token, USED_TTL_MS])

    async def release(self, webhook_id: int, token: str) -> None:
        await SETTLE(self.redis, [self.keys.single_use_lease(webhook_id)], [token, ""])
