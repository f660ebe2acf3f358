"""The circuit breakers' script (``relay.delivery.breaker``): one webhook's breaker, and the
operational events its changes raise (``relay.store.notices``), in one step."""

from __future__ import annotations

from relay.store.scripts import Script

BREAKER = Script(
    """
-- One webhook's circuit breaker (relay.delivery.breaker). KEYS[1] the breakers hash (webhook id
-- -> {"f": failures in a row, "state": "closed"|"open"|"half_open", "until": ms, "cool": ms};
-- absent: closed, no failure), KEYS[2] the notices outbox, KEYS[3] its sequence (relay.notices).
-- ARGV[1] 'check' | 'fail' | 'ok', ARGV[2] webhook id, ARGV[3] now (ms), ARGV[4] failures that
-- open it, ARGV[5] first cool-down (ms), ARGV[6] longest (ms), ARGV[7] how long a probe may take
-- (ms), ARGV[8] failing with no success this long (ms) disables the webhook (0: never); "since"
-- holds when its failures in a row began. ARGV[9] the notice context ('': raise no notice),
-- ARGV[10] the reason a 'disable' gives.
-- Returns {1 go / 0 pause, ms to wait, change ('' | 'opened' | 'reopened' | 'closed' |
-- 'disable'), the state as stored now ('' if none)}. An 'opened' or 'closed' queues its notice;
-- a 'disable' queues the switch-off, and its notice, for the worker that moves the notices.
local raw = redis.call('HGET', KEYS[1], ARGV[2])
local now, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local s = raw and cjson.decode(raw) or {f = 0, state = 'closed', ['until'] = 0, cool = 0, since = now}
local function announce(event, extra)
  extra.event, extra.at, extra.ctx = event, now, ARGV[9]
  extra.seq = redis.call('INCR', KEYS[3])
  redis.call('RPUSH', KEYS[2], cjson.encode(extra))
end
local function save(go, wait, change)
  local out = cjson.encode(s)
  redis.call('HSET', KEYS[1], ARGV[2], out)
  return {go, wait, change, out}
end
local op = ARGV[1]
if op == 'ok' then
  if not raw then return {1, 0, '', ''} end
  redis.call('HDEL', KEYS[1], ARGV[2])
  if s.state ~= 'closed' then
    if ARGV[9] ~= '' then announce('Recovered', {}) end
    return {1, 0, 'closed', ''}
  end
  return {1, 0, '', ''}
end
if op == 'check' then
  if s.state == 'closed' then return {1, 0, '', raw or ''} end
  if now < s['until'] then return {0, s['until'] - now, '', raw} end
  s.state = 'half_open'
  s['until'] = now + tonumber(ARGV[7])
  return save(1, 0, '')
end
-- a failed attempt
s.f = s.f + 1
local disable_after = tonumber(ARGV[8])
if disable_after > 0 and now - s.since >= disable_after then
  redis.call('HDEL', KEYS[1], ARGV[2])
  announce('Disabled', {off = tonumber(ARGV[2]), reason = ARGV[10]})
  return {0, 0, 'disable', ''}
end
if s.state == 'half_open' then
  s.state = 'open'
  s.cool = math.min(tonumber(ARGV[6]), math.max(tonumber(ARGV[5]), s.cool * 2))
  s['until'] = now + s.cool
  return save(0, s.cool, 'reopened')
end
if s.state == 'closed' and limit > 0 and s.f >= limit then
  s.state = 'open'
  s.cool = tonumber(ARGV[5])
  s['until'] = now + s.cool
  if ARGV[9] ~= '' then announce('Failing', {failures = s.f}) end
  return save(0, s.cool, 'opened')
end
return save(1, 0, '')
"""
)
