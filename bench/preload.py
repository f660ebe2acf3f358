"""Filling the events streams fast: a Lua script appends thousands of events per call.

Each event is what the listener would have written for one of the payload's callbacks (the
relay's own ``events_of``), with its own call id and callback digest (whose first half, as in
the event's id, is the call id), so every delivery, and every event's attempt log, is distinct;
events are spread over the partitions round-robin.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.payload import Signer
from relay.events import JSON, META, events_of
from relay.ingest.parsing import parse_callback
from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.scripts import Script

SENTINEL_ID = 111_222_333_444

PRELOAD = Script(
    """
-- KEYS: the partitions' events streams. ARGV[1] first call id, ARGV[2] how many, ARGV[3] and
-- ARGV[4] the entry's field names (relay.events.META, JSON); ARGV[5], ARGV[6]: the packed
-- metadata before and after its callback digest; ARGV[7], ARGV[8]: the JSON before and after
-- its call id (Template).
local first, count, n = tonumber(ARGV[1]), tonumber(ARGV[2]), #KEYS
for i = first, first + count - 1 do
  local digest = string.format('%032d', i) .. string.rep('0', 32)
  redis.call('XADD', KEYS[(i % n) + 1], '*', ARGV[3], ARGV[5] .. digest .. ARGV[6],
    ARGV[4], ARGV[7] .. string.format('%d', i) .. ARGV[8])
end
return count
"""
)


@dataclass(frozen=True)
class Template:
    """One event's entry (``StreamEvent.to_fields``) cut around what differs from one event to
    the next: the callback digest in its packed metadata, the call id in its JSON."""

    meta_head: bytes
    meta_tail: bytes
    json_head: bytes
    json_tail: bytes

    @staticmethod
    def callback(call_id: int) -> str:
        """The callback digest of the event with this call id (its first half the call id)."""
        return f"{call_id:032d}" + "0" * 32

    def fields(self, call_id: int) -> dict[str, bytes]:
        """The entry of the event with this call id, as ``PRELOAD`` writes it."""
        return {
            META: self.meta_head + self.callback(call_id).encode() + self.meta_tail,
            JSON: self.json_head + str(call_id).encode() + self.json_tail,
        }


def event_template(now_ms: int) -> Template:
    """The entry the listener would write for the payload's one-event callback, cut (``Template``)."""
    callback = parse_callback(Signer(now_ms).body(SENTINEL_ID))
    [event] = events_of(callback, now_ms)
    json_head, sep, json_tail = event.json.partition(str(SENTINEL_ID).encode())
    assert sep, "the sentinel id is in the event"
    packed = event.packed()
    assert packed.count(event.callback.encode()) == 1, "the digest is once in the metadata"
    meta_head, _, meta_tail = packed.partition(event.callback.encode())
    return Template(meta_head, meta_tail, json_head, json_tail)


async def preload(
    redis: RedisClient, keys: Keys, count: int, first_id: int, now_ms: int, chunk: int = 5_000
) -> None:
    """Append ``count`` events with call ids ``first_id...``, ``chunk`` per script call."""
    t = event_template(now_ms)
    await PRELOAD.load(redis)
    streams = keys.all_events()
    done = 0
    while done < count:
        n = min(chunk, count - done)
        args = [first_id + done, n, META, JSON, t.meta_head, t.meta_tail, t.json_head, t.json_tail]
        await redis.evalsha(PRELOAD.sha, len(streams), *streams, *args)
        done += n
