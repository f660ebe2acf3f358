"""The outbox of operational events (``relay.notices``), and their way onto the events streams.

A notice is first an item of one Redis list (``Keys.notices``), pushed in the same script as what
it announces where one script can do both: ``BREAKER`` as a breaker opens or closes, or decides
to disable a webhook (the item then carries the switch-off itself), ``NOTE`` as a dead letter is
counted. A 410's ``Disabled`` is pushed (``ANNOUNCE``) right after the webhook was switched off,
by the worker that switched it: the webhook table and the outbox are in different slots.

Workers move the items onto the events streams (``relay.delivery.announcer``): under a short
lease (one worker at a time) they ``take`` the oldest, do what they ask, ``put`` their events on
the streams, then trim them off the list (``drained``). A worker that dies in between leaves them
for the next, who does them again: the same item is the same event (its id, its ``webhook-id``),
so a notice is delivered at least once, never lost.

``DUE`` first raises the ``DeadLettered`` notices a quiet minute held back: letters counted after
the last notice of their webhook are announced once the minute is over, even if no letter follows.
"""

from __future__ import annotations

import secrets

from relay.events import StreamEvent
from relay.keys import Keys
from relay.notices import QUIET_MS
from relay.store.connect import RedisClient
from relay.store.scripts import Script, run

LEASE_MS = 10_000
"""How long a worker may take to move one batch of notices before another may."""
BATCH = 100

ANNOUNCE = Script(
    """
-- Queue one notice. KEYS[1] outbox, KEYS[2] its sequence. ARGV[1] event, ARGV[2] now (ms),
-- ARGV[3] context, ARGV[4] reason.
local seq = redis.call('INCR', KEYS[2])
redis.call('RPUSH', KEYS[1], cjson.encode({event = ARGV[1], at = tonumber(ARGV[2]), seq = seq,
  ctx = ARGV[3], reason = ARGV[4]}))
return seq
"""
)

NOTE = Script(
    """
-- Count one dead letter of a webhook; raise its DeadLettered notice unless one was raised less
-- than ARGV[3] ms ago (the letters are counted meanwhile: DUE raises them once that is over).
-- KEYS[1] the counts (webhook id -> {n, last, ctx, reason}), KEYS[2] outbox, KEYS[3] sequence.
-- ARGV[1] webhook id, ARGV[2] now (ms), ARGV[3] quiet (ms), ARGV[4] context, ARGV[5] reason.
local now = tonumber(ARGV[2])
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local s = raw and cjson.decode(raw) or {n = 0, last = 0}
s.n = s.n + 1
s.ctx = ARGV[4]
s.reason = ARGV[5]
if now - s.last >= tonumber(ARGV[3]) then
  local seq = redis.call('INCR', KEYS[3])
  redis.call('RPUSH', KEYS[2], cjson.encode({event = 'DeadLettered', at = now, seq = seq,
    ctx = s.ctx, reason = s.reason, count = s.n}))
  s.n = 0
  s.last = now
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(s))
return s.n
"""
)

DUE = Script(
    """
-- Raise the DeadLettered notices whose quiet minute is over; then, unless another worker holds
-- the lease, take it and return the oldest notices. KEYS[1] counts, KEYS[2] outbox, KEYS[3]
-- sequence, KEYS[4] lease. ARGV[1] now (ms), ARGV[2] quiet (ms), ARGV[3] token, ARGV[4] lease
-- (ms), ARGV[5] most notices.
local now, quiet = tonumber(ARGV[1]), tonumber(ARGV[2])
local counts = redis.call('HGETALL', KEYS[1])
for i = 1, #counts, 2 do
  local s = cjson.decode(counts[i + 1])
  if now - s.last >= quiet then
    if s.n > 0 then
      local seq = redis.call('INCR', KEYS[3])
      redis.call('RPUSH', KEYS[2], cjson.encode({event = 'DeadLettered', at = now, seq = seq,
        ctx = s.ctx, reason = s.reason, count = s.n}))
      s.n = 0
      s.last = now
      redis.call('HSET', KEYS[1], counts[i], cjson.encode(s))
    else
      redis.call('HDEL', KEYS[1], counts[i])
    end
  end
end
if redis.call('LLEN', KEYS[2]) == 0 then return {} end
if not redis.call('SET', KEYS[4], ARGV[3], 'NX', 'PX', ARGV[4]) then return {} end
return redis.call('LRANGE', KEYS[2], 0, tonumber(ARGV[5]) - 1)
"""
)

DRAINED = Script(
    """
-- The first ARGV[2] notices are on the streams: trim them off, give the lease back. KEYS[1]
-- outbox, KEYS[2] lease. ARGV[1] token. 0 when the lease was lost (another worker adds them again).
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('LTRIM', KEYS[1], tonumber(ARGV[2]), -1)
redis.call('DEL', KEYS[2])
return 1
"""
)


class Notices:
    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    @property
    def breaker_keys(self) -> list[str]:
        """The keys ``BREAKER`` takes: its hash, the outbox, the sequence."""
        return [self.keys.breakers, self.keys.notices, self.keys.notice_seq]

    async def announce(self, event: str, context: bytes, reason: str, now_ms: int) -> None:
        keys = [self.keys.notices, self.keys.notice_seq]
        await run(self.redis, ANNOUNCE, keys, [event, now_ms, context, reason])

    async def dead_lettered(self, webhook_id: int, context: bytes, reason: str, now_ms: int) -> None:
        """Count one dead letter of the webhook (``DeadLettered``, at most once a minute)."""
        keys = [self.keys.dead_counts, self.keys.notices, self.keys.notice_seq]
        await run(self.redis, NOTE, keys, [webhook_id, now_ms, QUIET_MS, context, reason])

    async def take(self, now_ms: int) -> tuple[str, list[bytes]]:
        """Raise the notices a quiet minute held back; then, unless another worker holds the lease,
        take it: its token and the oldest notices (none: nothing to do, or another's turn)."""
        token = secrets.token_hex(8)
        keys = [self.keys.dead_counts, self.keys.notices, self.keys.notice_seq, self.keys.notice_lock]
        items: list[bytes] = await run(self.redis, DUE, keys, [now_ms, QUIET_MS, token, LEASE_MS, BATCH])
        return token, list(items)

    async def put(self, events: list[StreamEvent]) -> None:
        """Add operational events to their partitions' events streams, as the listener adds CallFire's."""
        if not events:
            return
        pipe = self.redis.pipeline(transaction=False)
        for event in events:
            partition = self.keys.partition_of(bytes.fromhex(event.callback))
            pipe.xadd(self.keys.events(partition), event.to_fields())  # type: ignore[arg-type]
        await pipe.execute()

    async def drained(self, token: str, count: int) -> bool:
        """The first ``count`` notices are done: trim them off and give the lease back (0: just
        give it back). False when the lease was lost meanwhile (its holder does them again)."""
        keys = [self.keys.notices, self.keys.notice_lock]
        return bool(await run(self.redis, DRAINED, keys, [token, count]))
