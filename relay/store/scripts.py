"""Lua scripts, loaded once and called by SHA; reloaded when Redis forgets them (a restart)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoScriptError

from relay.store.connect import RedisClient


@dataclass(frozen=True)
class Script:
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())  # noqa: S324 - Redis names scripts by SHA-1

    async def load(self, redis: RedisClient) -> None:
        await redis.script_load(self.source)

    async def __call__(self, redis: RedisClient, keys: list[str], args: list[Any]) -> Any:
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.load(redis)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)


INGEST = Script(
    """
-- Claim a callback body and append its events, all or nothing.
-- KEYS[1] dedup claim, KEYS[2] events stream
-- ARGV[1] dedup window (ms); what every event shares: ARGV[2] CallFire webhook id, ARGV[3] its
-- name, ARGV[4] received at (ms), ARGV[5] callback digest; then five values per event:
-- resource, event, event key, timestamp, JSON. The entry's fields are StreamEvent.to_fields().
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = 0
for i = 6, #ARGV, 5 do
  redis.call('XADD', KEYS[2], '*',
    'resource', ARGV[i], 'event', ARGV[i + 1], 'event_key', ARGV[i + 2],
    'cf_webhook_id', ARGV[2], 'cf_webhook_name', ARGV[3], 'timestamp', ARGV[i + 3],
    'received_at', ARGV[4], 'callback', ARGV[5], 'index', n, 'json', ARGV[i + 4])
  n = n + 1
end
-- The claim is written last: if an append fails, nothing is claimed and a retry is not a replay.
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return n
"""
)
