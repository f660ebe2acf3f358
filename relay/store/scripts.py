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
-- Claim callback bodies and append their events: each callback all or nothing, in order.
-- Two KEYS per callback: its dedup claim, its events stream. ARGV[1] dedup window (ms); then per
-- callback: its number of events n; what its events share: CallFire webhook id, its name,
-- received at (ms), callback digest; then five values per event: resource, event, event key,
-- timestamp, JSON. The entry's fields are StreamEvent.to_fields().
-- Returns, per callback, the events appended: 0 for a repeat inside the window.
local appended = {}
local a = 2
for k = 1, #KEYS, 2 do
  local n = tonumber(ARGV[a])
  local first = a + 5
  if redis.call('EXISTS', KEYS[k]) == 1 then
    appended[#appended + 1] = 0
  else
    for i = 0, n - 1 do
      local e = first + 5 * i
      redis.call('XADD', KEYS[k + 1], '*',
        'resource', ARGV[e], 'event', ARGV[e + 1], 'event_key', ARGV[e + 2],
        'cf_webhook_id', ARGV[a + 1], 'cf_webhook_name', ARGV[a + 2], 'timestamp', ARGV[e + 3],
        'received_at', ARGV[a + 3], 'callback', ARGV[a + 4], 'index', i, 'json', ARGV[e + 4])
    end
    -- The claim is written last: if an append fails, nothing is claimed and a retry is not a
    -- replay. (A failure ends the whole call: the callbacks before it stay written and claimed.)
    redis.call('SET', KEYS[k], '1', 'PX', ARGV[1])
    appended[#appended + 1] = n
  end
  a = first + 5 * n
end
return appended
"""
)
