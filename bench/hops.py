"""Where an event's end-to-end time goes, hop by hop, from what the relay writes anyway.

No timing is added to the relay for this: after a run, each delivered event's times are read
back from what is already kept, and joined by the call id (the token the sink reads):

- ``received``: the listener's ``received_at`` field on the stream entry (unix ms, taken once
  the body was read and checked, just before the write is queued);
- ``appended``: the entry id's time (Redis's clock when it appended the entry);
- ``answered``: the generator's 2xx (monotonic, turned into unix time);
- ``read``: the ``at`` of the event's ``matched`` record (the worker matched it right after
  the read that returned it, and the webhook view's catch-up);
- ``posted``: the delivery's attempt record, its ``at`` less its ``latencyMs`` (the POST's start);
- ``arrived``: the sink's arrival (monotonic, turned into unix time).

Every clock is the machine's (CLOCK_REALTIME, and CLOCK_MONOTONIC at a fixed offset from it
during a run); the relay's times are whole milliseconds, so each hop is good to about 1 ms.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from bench.stats import percentile
from relay.events import StreamEvent
from relay.keys import Keys

HOPS = (
    ("received -> appended", "received", "appended"),
    ("appended -> answered", "appended", "answered"),
    ("appended -> read", "appended", "read"),
    ("read -> posted", "read", "posted"),
    ("posted -> arrived", "posted", "arrived"),
    ("answered -> arrived", "answered", "arrived"),
)
"""Each hop: its name, and the two times it runs between."""
POINTS = ("received", "appended", "answered", "read", "posted", "arrived")


def mono_offset_ns() -> int:
    """Unix ns less monotonic ns, now: the tightest of a few paired reads."""
    best = None
    for _ in range(5):
        before = time.monotonic_ns()
        wall = time.time_ns()
        after = time.monotonic_ns()
        if best is None or after - before < best[0]:
            best = (after - before, wall - (before + after) // 2)
    assert best is not None
    return best[1]


@dataclass(frozen=True, slots=True)
class Timeline:
    """One event's times, unix ms (floats; NaN when not known)."""

    token: int
    received: float
    appended: float
    answered: float
    read: float
    posted: float
    arrived: float

    def hop(self, start: str, end: str) -> float:
        return float(getattr(self, end)) - float(getattr(self, start))


def _token(event_json: bytes) -> int | None:
    try:
        return int(orjson.loads(event_json)["resource"]["id"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def record_times(raw_log: Iterable[bytes]) -> tuple[float, float]:
    """(read, posted) from an event's log: its matched record's ``at``; its first 2xx attempt's
    start. Pure."""
    read = posted = math.nan
    for raw in raw_log:
        record = orjson.loads(raw)
        if record.get("outcome") == "matched":
            read = float(record["at"])
        elif record.get("status") is not None and 200 <= int(record["status"]) < 300:
            posted = float(record["at"]) - float(record.get("latencyMs") or 0.0)
    return read, posted


async def timelines(
    redis: Any,
    keys: Keys,
    acks: Sequence[Sequence[int]],
    arrivals: Sequence[Sequence[int]],
    offset_ns: int,
) -> list[Timeline]:
    """The timeline of each acknowledged call id that arrived (``acks``, ``arrivals``: (call id,
    monotonic ns), ``offset_ns``: ``mono_offset_ns``), from the streams and the event logs."""
    answered = {int(token): (t + offset_ns) / 1e6 for token, t in acks}
    arrived = {int(token): (t + offset_ns) / 1e6 for token, t in arrivals}
    wanted = answered.keys() & arrived.keys()
    if not wanted:
        return []
    since = int(min(answered[t] for t in wanted)) - 60_000
    found: dict[int, tuple[float, float, str]] = {}
    for stream in keys.all_events():
        start: str = f"{since}-0"
        while True:
            batch = await redis.xrange(stream, min=start, max="+", count=2000)
            for entry_id, fields in batch:
                token = _token(fields.get(b"json", b""))
                if token in wanted:
                    ms = int(entry_id.split(b"-")[0])
                    event = StreamEvent.from_fields(fields)
                    found[token] = (float(event.received_at), float(ms), event.id)
            if len(batch) < 2000:
                break
            start = "(" + batch[-1][0].decode()
    tokens = sorted(found)
    pipe = redis.pipeline(transaction=False)
    for token in tokens:
        pipe.lrange(keys.outcomes(found[token][2]), 0, -1)
    logs = await pipe.execute() if tokens else []
    out = []
    for token, log in zip(tokens, logs, strict=True):
        received, appended, _ = found[token]
        read, posted = record_times(log)
        out.append(Timeline(token, received, appended, answered[token], read, posted, arrived[token]))
    return out


def breakdown(lines: Sequence[Timeline], tail: float = 1.0) -> dict[str, dict[str, float]]:
    """Per hop: its p50 and p99 over all events, and its median over the slowest ``tail`` %
    of them end to end (where their time went). Pure."""
    slow_count = max(1, math.ceil(len(lines) * tail / 100))
    slowest = sorted(lines, key=lambda line: line.hop("answered", "arrived"))[-slow_count:]
    out: dict[str, dict[str, float]] = {}
    for name, start, end in HOPS:
        every = [v for v in (line.hop(start, end) for line in lines) if not math.isnan(v)]
        tails = [v for v in (line.hop(start, end) for line in slowest) if not math.isnan(v)]
        out[name] = {
            "p50": percentile(every, 50),
            "p99": percentile(every, 99),
            "slowest_1pct_p50": percentile(tails, 50),
        }
    return out
