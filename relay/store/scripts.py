"""The relay's Lua scripts, and the one way to run them: by SHA, in a pipeline, loaded again and
re-sent when Redis answers NOSCRIPT (it restarted, or SCRIPT FLUSH). The circuit breakers' script
is ``relay.store.breakers``'s, the operational events' ``relay.store.notices``'."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
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


class ScriptPipeline:
    """A pipeline (no transaction) of script calls and any other commands (on ``pipe``).

    ``execute`` returns every reply, errors as values. A script call answered NOSCRIPT has its
    script loaded and is sent once more (the other commands are not), its reply put in its place.
    ``execute(resend=False)`` loads the forgotten scripts but leaves their calls' NOSCRIPT in
    place, for a caller whose calls must be sent again with other commands (the ingest writer's
    replica barriers).
    """

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self.pipe: Any = redis.pipeline(transaction=False)
        self._calls: dict[int, tuple[Script, tuple[Any, ...]]] = {}

    def call(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> None:
        """Queue one call of ``script``. (EVALSHA through ``execute_command``: a cluster
        pipeline refuses ``evalsha()``.)"""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        self._calls[len(self.pipe)] = (script, command)
        self.pipe.execute_command(*command)

    async def execute(self, *, resend: bool = True) -> list[Any]:
        replies = list(await self.pipe.execute(raise_on_error=False))
        forgotten = [i for i in self._calls if isinstance(replies[i], NoScriptError)]
        if forgotten:
            for script in {self._calls[i][0] for i in forgotten}:
                await script.load(self.redis)
            if not resend:
                return replies
            again = self.redis.pipeline(transaction=False)
            for i in forgotten:
                again.execute_command(*self._calls[i][1])
            for i, reply in zip(forgotten, await again.execute(raise_on_error=False), strict=True):
                replies[i] = reply
        return replies


async def run(redis: RedisClient, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """One call of ``script``: its reply, or its error raised."""
    pipe = ScriptPipeline(redis)
    pipe.call(script, keys, args)
    (reply,) = await pipe.execute()
    if isinstance(reply, BaseException):
        raise reply
    return reply


# --- ingest (relay.ingest.writer) ----------------------------------------------------------------

INGEST = Script(
    """
-- Claim callback bodies and append their events: each callback all or nothing, in order.
-- Two KEYS per callback: its dedup claim, its events stream. ARGV[1] dedup window (ms); then per
-- callback: its number of events n, then two values per event: its packed metadata and its JSON.
-- The entry's fields are StreamEvent.to_fields(): 'm' and 'json', passed through as built by
-- relay.events.entries_of (the format is defined there, not here).
-- Returns, per callback, the events appended: 0 for a repeat inside the window.
local appended = {}
local a = 2
for k = 1, #KEYS, 2 do
  local n = tonumber(ARGV[a])
  -- The claim and the check in one command (SET NX: nil when the body was claimed already).
  if not redis.call('SET', KEYS[k], '1', 'NX', 'PX', ARGV[1]) then
    appended[#appended + 1] = 0
  else
    for e = a + 1, a + 2 * n, 2 do
      local id = redis.pcall('XADD', KEYS[k + 1], '*', 'm', ARGV[e], 'json', ARGV[e + 1])
      if type(id) == 'table' and id.err then
        -- An append failed: the claim goes, so a retry is not taken for a replay. (The call
        -- ends with the error: the callbacks before this one stay written and claimed.)
        redis.call('DEL', KEYS[k])
        return id
      end
    end
    appended[#appended + 1] = n
  end
  a = a + 1 + 2 * n
end
return appended
"""
)


# --- the partition streams as a work queue (relay.store.streams) --------------------------------

TAKE = Script(
    """
-- Move due retries onto the deliveries stream, then read at most ARGV[3] new entries of both
-- streams, without blocking. KEYS[1] scheduled set, KEYS[2] deliveries stream, KEYS[3] events
-- stream. ARGV[1] group, ARGV[2] consumer, ARGV[3] most entries, ARGV[4] now (unix ms; 0: move
-- nothing), ARGV[5] most retries to move. Deliveries take at most half the count, so a flood of
-- replays never starves new events.
-- Returns {score of the next retry or false, deliveries entries, events entries}.
local nxt = false
if ARGV[4] ~= '0' then
  local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[4], 'BYSCORE', 'LIMIT', 0, ARGV[5])
  for _, member in ipairs(due) do
    local ok, fields = pcall(cjson.decode, member)
    if ok and type(fields) == 'table' and #fields > 0 and #fields % 2 == 0 then
      redis.call('XADD', KEYS[2], '*', unpack(fields))
    else
      redis.call('XADD', KEYS[2], '*', 'poison', member)
    end
    redis.call('ZREM', KEYS[1], member)
  end
  nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2] or false
end
local want = tonumber(ARGV[3])
local replays, events = {}, {}
local found = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', math.ceil(want / 2),
  'STREAMS', KEYS[2], '>')
if found then replays = found[1][2] end
want = want - #replays
if want > 0 then
  found = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', want, 'STREAMS', KEYS[3], '>')
  if found then events = found[1][2] end
end
return {nxt, replays, events}
"""
)

COMPLETE = Script(
    """
-- Schedule retries, then acknowledge entries, at once. KEYS[1] events stream, KEYS[2] deliveries
-- stream, KEYS[3] scheduled set. ARGV[1] group, ARGV[2] count of events ids, ARGV[3] count of
-- deliveries ids, then those ids, then score/member pairs.
local ne, nd = tonumber(ARGV[2]), tonumber(ARGV[3])
local first = 4 + ne + nd
for i = first, #ARGV, 2 do redis.call('ZADD', KEYS[3], ARGV[i], ARGV[i + 1]) end
if ne > 0 then redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 4, 3 + ne)) end
if nd > 0 then redis.call('XACK', KEYS[2], ARGV[1], unpack(ARGV, 4 + ne, 3 + ne + nd)) end
return ne + nd
"""
)


# --- the webhook table (relay.store.webhooks) ---------------------------------------------------

WRITE = Script(
    """
-- KEYS[1] table hash, KEYS[2] version counter, KEYS[3..] index sorted sets (score = id):
-- ARGV[4] of them to leave, then the ones to join
-- ARGV[1] id, ARGV[2] the JSON the writer read ('' = absent), ARGV[3] new JSON ('' = delete),
-- ARGV[5] position in KEYS of an index set that must be empty (0 = none)
local current = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
local must_be_empty = tonumber(ARGV[5])
if must_be_empty > 0 and redis.call('ZCARD', KEYS[must_be_empty]) > 0 then return -1 end
local leave = tonumber(ARGV[4])
for i = 3, 2 + leave do redis.call('ZREM', KEYS[i], ARGV[1]) end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
for i = 3 + leave, #KEYS do redis.call('ZADD', KEYS[i], ARGV[1], ARGV[1]) end
-- A fresh counter starts at the server's clock (microseconds), not at 0: after Redis restarts
-- empty, no version a process still holds can come round again and hide the new table.
if redis.call('EXISTS', KEYS[2]) == 0 then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[2], now[1] .. string.format('%06d', now[2]))
end
redis.call('INCR', KEYS[2])
return 1
"""
)


# --- single-use webhooks (relay.delivery.single_use) --------------------------------------------

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


# --- rate limits (relay.delivery.throttle) ------------------------------------------------------

LEASE = Script(
    """
-- Lease up to ARGV[3] tokens of one webhook's rate limit (GCRA, on the server's clock, so the
-- workers' clocks need not agree). KEYS[1] the theoretical arrival time (unix ms). ARGV[1] ms
-- per token, ARGV[2] tolerance (ms: the burst allowed beyond the rate), ARGV[3] tokens wanted.
-- Returns {tokens granted, ms until one more may be granted}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local step, tolerance, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local fit = 0
if tat - now <= tolerance then fit = math.floor((now + tolerance - tat) / step) + 1 end
local granted = math.min(want, fit)
tat = tat + granted * step
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now + tolerance) + 1000)
return {granted, math.ceil(math.max(0, tat - tolerance - now))}
"""
)
