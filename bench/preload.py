"""Filling the events streams fast: a Lua script appends thousands of events per call.

Each event is what the listener would have written for one of the payload's callbacks (the
relay's own ``events_of``), with its own call id and callback digest (whose first half, as in
the event's id, is the call id), so every delivery, and every event's attempt log, is distinct;
events are spread over the partitions round-robin.
"""

from __future__ import annotations

from bench.payload import Signer
from relay.events import events_of
from relay.ingest.parsing import parse_callback
from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.scripts import Script

SENTINEL_ID = 111_222_333_444

PRELOAD = Script(
    """
-- KEYS: the partitions' events streams. ARGV[1] first call id, ARGV[2] how many,
-- ARGV[3] and ARGV[4]: the event's JSON before and after its call id; ARGV[5..] the other fields.
local first, count, n = tonumber(ARGV[1]), tonumber(ARGV[2]), #KEYS
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
local base = #fields
fields[base + 1] = 'callback'
fields[base + 3] = 'json'
for i = first, first + count - 1 do
  fields[base + 2] = string.format('%032d', i) .. string.rep('0', 32)
  fields[base + 4] = ARGV[3] .. string.format('%d', i) .. ARGV[4]
  redis.call('XADD', KEYS[(i % n) + 1], '*', unpack(fields))
end
return count
"""
)


def event_template(now_ms: int) -> tuple[bytes, bytes, list[bytes | str | int]]:
    """The event JSON split around its call id, and every other stream field (name, value...)."""
    callback = parse_callback(Signer(now_ms).body(SENTINEL_ID))
    [event] = events_of(callback, now_ms)
    head, sep, tail = event.json.partition(str(SENTINEL_ID).encode())
    assert sep, "the sentinel id is in the event"
    others: list[bytes | str | int] = []
    for name, value in event.to_fields().items():
        if name not in ("callback", "json"):
            others += [name, value]
    return head, tail, others


async def preload(
    redis: RedisClient, keys: Keys, count: int, first_id: int, now_ms: int, chunk: int = 5_000
) -> None:
    """Append ``count`` events with call ids ``first_id...``, ``chunk`` per script call."""
    head, tail, others = event_template(now_ms)
    await PRELOAD.load(redis)
    streams = keys.all_events()
    done = 0
    while done < count:
        n = min(chunk, count - done)
        args = [first_id + done, n, head, tail, *others]
        await redis.evalsha(PRELOAD.sha, len(streams), *streams, *args)
        done += n
