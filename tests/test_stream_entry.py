"""An event's stream entry: two fields, its metadata packed in ``m`` and its JSON; any text
round-trips; entries written before the metadata was packed still read; anything else is poison."""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.events import LEGACY_FIELDS, StreamEvent, entries_of, events_of
from relay.ingest.parsing import parse_callback
from tests.callbacks import as_stored, bare_stream_event, call_event, callback_body, legacy_fields

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

HOSTILE = [
    "",
    'a","b',
    '"],"x":["',
    "\\",
    '\\"',
    "\x00\x01\x1f",
    "line\nbreak\r\n\t",
    "\u2028\u2029",
    "null",
    "[1,2]",
    "☎ 𝄞 émoji 🙂",
    "m",
    "x" * 10_000,
]


def events() -> st.SearchStrategy[StreamEvent]:
    return st.builds(
        StreamEvent,
        resource=st.text(),
        event=st.text(),
        event_key=st.text(),
        cf_webhook_id=st.none() | INT64,
        cf_webhook_name=st.text() | st.sampled_from(HOSTILE),
        timestamp=st.none() | INT64,
        received_at=INT64,
        callback=st.text(),
        index=INT64,
        json=st.binary(),
        traceparent=st.text(),
    )


@given(events())
def test_any_event_round_trips_through_its_entry(event: StreamEvent) -> None:
    """Whatever the text (quotes, separators, control characters, any script), the entry reads
    back as the same event; and it is two fields."""
    fields = as_stored(event.to_fields())
    assert set(fields) == {b"m", b"json"}
    assert StreamEvent.from_fields(fields) == event


@given(events(), st.text() | st.sampled_from(HOSTILE), st.text() | st.sampled_from(HOSTILE))
def test_packed_metadata_is_unambiguous(event: StreamEvent, name: str, other: str) -> None:
    """Two events that differ only in their webhook's name never pack alike, and the name reads
    back exactly: no name can pass for another, or spill into the next value."""
    a, b = dataclasses.replace(event, cf_webhook_name=name), dataclasses.replace(event, cf_webhook_name=other)
    assert (a.packed() == b.packed()) == (name == other)
    assert StreamEvent.from_fields(as_stored(a.to_fields())).cf_webhook_name == name


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("traceparent", ["", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"])
def test_the_listeners_entries_are_its_events_fields(name: str, traceparent: str) -> None:
    """``entries_of`` (what the ingest script is given to write) is ``to_fields()`` of the
    events ``events_of`` makes, value for value, for any webhook name."""
    second = call_event("FINISHED", call_id=2)
    second.pop("timestamp")
    callback = parse_callback(callback_body(call_event(call_id=1), second, webhook_id=9, name=name))
    made = events_of(callback, 1234, traceparent)
    assert [e.cf_webhook_name for e in made] == [name, name]
    assert [(e.traceparent, e.index) for e in made] == [(traceparent, 0), (traceparent, 1)]
    written = [tuple(e.to_fields().values()) for e in made]
    assert [list(e.to_fields()) for e in made] == [["m", "json"]] * 2
    assert entries_of(callback, 1234, traceparent) == written


@given(events())
def test_entries_written_before_the_upgrade_still_read(event: StreamEvent) -> None:
    """An entry in the old format (a field per value, ``traceparent`` only when traced) reads as
    the same event: streams written before an upgrade hold them until they are trimmed."""
    fields = legacy_fields(event)
    assert tuple(fields)[: len(LEGACY_FIELDS)] == tuple(f.encode() for f in LEGACY_FIELDS)
    assert StreamEvent.from_fields(fields) == event


def test_later_values_appended_to_the_metadata_are_ignored() -> None:
    """A later format may append values: this reader keeps what it knows."""
    event = bare_stream_event()
    meta = orjson.loads(event.packed())
    fields = {b"m": orjson.dumps([*meta, "later", 1]), b"json": event.json}
    assert StreamEvent.from_fields(fields) == event


def _meta(**changes: object) -> bytes:
    values = orjson.loads(bare_stream_event().packed())
    order = ["resource", "event", "event_key", "cf_webhook_id", "cf_webhook_name", "timestamp"]
    order += ["received_at", "callback", "index", "traceparent"]
    for name, value in changes.items():
        values[order.index(name)] = value
    return orjson.dumps(values)


@pytest.mark.parametrize(
    "packed",
    [
        b"",
        b"not json",
        b'{"resource":"OutboundCall"}',
        b'"OutboundCall"',
        orjson.dumps(orjson.loads(bare_stream_event().packed())[:9]),
        _meta(index="0"),
        _meta(index=True),
        _meta(received_at=1.5),
        _meta(cf_webhook_id="77"),
        _meta(resource=None),
        _meta(cf_webhook_name=1),
        _meta(traceparent=None),
    ],
    ids=lambda p: p[:40].decode(errors="replace"),
)
def test_unreadable_metadata_is_poison(packed: bytes) -> None:
    """Packed metadata that is not the ten values of their types raises ValueError (the worker
    dead-letters the entry as poison)."""
    with pytest.raises(ValueError):
        StreamEvent.from_fields({b"m": packed, b"json": b"{}"})


@pytest.mark.parametrize("missing", [b"m", b"json"])
def test_an_entry_lacking_a_field_is_poison(missing: bytes) -> None:
    """Without ``m`` it is read as an old entry, and lacks that format's fields: KeyError."""
    fields = as_stored(bare_stream_event().to_fields())
    del fields[missing]
    with pytest.raises(KeyError):
        StreamEvent.from_fields(fields)
