"""Parsing callback bodies: each event's JSON kept byte for byte, and every shape error named."""

from __future__ import annotations

import re

import pytest

from relay.events import events_of, outbound_body
from relay.ingest.parsing import CallbackError, parse_callback

TWO_EVENTS = (
    b'{"timestamp": 1700000000001, "webhookId": 42, "webhookName": "hook", '
    b'"resourceType": "OutboundText", "events": [ '
    b'{"timestamp":1700000000000,"resourceType":"OutboundText","eventType":"Finished",'
    b'"resource":{"id":7420017300281076000,"message":"caf\xc3\xa9 \\u00e9"}} ,\n'
    b'  {"resourceType" : "OutboundText", "eventType":"FINISHED", "resource": {"id": 1.50}}]}'
)


def test_each_event_keeps_its_exact_text() -> None:
    """Big ids, escapes, spacing and number spelling survive untouched."""
    callback = parse_callback(TWO_EVENTS)
    assert [e.text for e in callback.events] == [
        b'{"timestamp":1700000000000,"resourceType":"OutboundText","eventType":"Finished",'
        b'"resource":{"id":7420017300281076000,"message":"caf\xc3\xa9 \\u00e9"}}',
        b'{"resourceType" : "OutboundText", "eventType":"FINISHED", "resource": {"id": 1.50}}',
    ]


def test_top_level_fields_are_read() -> None:
    """webhookId, webhookName and the timestamp come from the envelope; events fall back to it."""
    callback = parse_callback(TWO_EVENTS)
    assert (callback.webhook_id, callback.webhook_name, callback.timestamp) == (
        42,
        "hook",
        1700000000001,
    )
    assert [e.timestamp for e in callback.events] == [1700000000000, 1700000000001]
    assert [e.event_type for e in callback.events] == ["Finished", "FINISHED"]


def test_event_keys_are_normalised() -> None:
    """Finished and FINISHED match the same subscriptions."""
    events = events_of(parse_callback(TWO_EVENTS), received_at=5)
    assert {e.event_key for e in events} == {"finished"}
    assert [e.index for e in events] == [0, 1]


def test_outbound_body_embeds_the_event_exactly() -> None:
    """The subscriber's body is CallFire's envelope around the event's original text."""
    event = events_of(parse_callback(TWO_EVENTS), received_at=5)[0]
    body = outbound_body(event, 9, "mine")
    assert body.startswith(b'{"timestamp":1700000000000,"webhookId":9,"webhookName":"mine",')
    assert body.endswith(b'"events":[' + event.json + b"]}")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not a JSON object"),
        (b"[]", "not a JSON object"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"events": [', "not valid JSON"),
        (b'{"a": 1} x', "unexpected data"),
        (b'{"a": NaN, "events": []}', "not valid JSON"),
        (b'{"webhookId": 1}', "must carry an events array"),
        (b'{"events": {}}', "must carry an events array"),
        (b'{"events": []}', "array is empty"),
        (b'{"events": [1]}', "events[0] is not an object"),
        (b'{"events": [{"eventType": "Finished"}]}', "events[0].resourceType is missing"),
        (
            b'{"events": [{"resourceType": "OutboundCall", "eventType": ""}]}',
            "eventType is missing",
        ),
        (b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", "nested too deeply"),
        (
            b'{"webhookName": "a\\ud800", "events": [{"resourceType": "A", "eventType": "B"}]}',
            "webhookName is not Unicode text",
        ),
        (b'{"events": [{"resourceType": "\\udfff", "eventType": "B"}]}', "resourceType is not Unicode"),
        (b'{"events": [{"resourceType": "A", "eventType": "B\\ud83d"}]}', "eventType is not Unicode"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body: bytes, message: str) -> None:
    """Every way a body fails to be a callback raises CallbackError (a 400) saying why."""
    with pytest.raises(CallbackError, match=re.escape(message)) as info:
        parse_callback(body)
    assert info.value.status == 400


def test_paired_surrogates_are_text() -> None:
    """An escaped pair is one character (U+1F642 here), not an unpaired surrogate."""
    body = b'{"webhookName":"\\ud83d\\ude42","events":[{"resourceType":"A","eventType":"B"}]}'
    assert parse_callback(body).webhook_name == "\U0001f642"


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 2**64, 10**30])
def test_integers_past_64_bits_are_absent(number: int) -> None:
    """A webhookId or timestamp past a 64-bit integer is not CallFire's: read as absent (the
    event's JSON, the number in it, is still kept exactly), whichever walk reads the body."""
    for layout in (
        b'{"webhookId":%d,"timestamp":%d,"events":[%s]}',
        b'{"events":[%s],"webhookId":%d,"timestamp":%d}',
    ):
        event = b'{"resourceType":"A","eventType":"B","timestamp":%d}' % number
        args = (number, number, event) if layout.startswith(b'{"webhookId') else (event, number, number)
        callback = parse_callback(layout % args)
        assert (callback.webhook_id, callback.timestamp, callback.events[0].timestamp) == (None, None, None)
        assert callback.events[0].text == event
    edge = parse_callback(b'{"webhookId":%d,"events":[{"resourceType":"A","eventType":"B"}]}' % (2**63 - 1))
    assert edge.webhook_id == 2**63 - 1


def test_too_many_events_is_a_413() -> None:
    """More events than allowed is refused as too large, without walking the rest."""
    event = b'{"resourceType":"OutboundCall","eventType":"Finished"}'
    body = b'{"events":[' + b",".join([event] * 6) + b"]}"
    with pytest.raises(CallbackError) as info:
        parse_callback(body, max_events=5)
    assert info.value.status == 413


def test_nesting_is_bounded_even_inside_strings_it_is_not() -> None:
    """Brackets inside strings do not count; real nesting past MAX_DEPTH is refused."""
    from relay.ingest.parsing import MAX_DEPTH

    inside_string = b'{"events":[{"resourceType":"A","eventType":"B","note":"' + b"[" * 500 + b'"}]}'
    assert parse_callback(inside_string).events[0].resource_type == "A"

    def body(arrays: int) -> bytes:  # the envelope, the events array and the event add three levels
        return b'{"events":[{"resourceType":"A","eventType":"B","r":' + b"[" * arrays + b"]" * arrays + b"}]}"

    assert parse_callback(body(MAX_DEPTH - 3)).events[0].event_type == "B"
    with pytest.raises(CallbackError, match="nested too deeply"):
        parse_callback(body(MAX_DEPTH - 2))


@pytest.mark.parametrize(
    "body",
    [
        b'{"events":[{"resourceType":"A","eventType":"B"}],"webhookId":1}',  # events not last
        b'{"a":{"events":[1]},"events":[{"resourceType":"A","eventType":"B"}]}',  # nested key first
        b'{"a":"\\"events\\":[","events":[{"resourceType":"A","eventType":"B"}]}',  # key in a string
        b'{"events":[{"resourceType":"A","eventType":"B"}],"events":[{"resourceType":"C","eventType":"D"}]}',
        b'{"events" : [ {"resourceType":"A","eventType":"B"} , {"resourceType":"C","eventType":"D"} ] }',
        b'{"events":[{"resourceType":"A","eventType":"B","resource":{"id":123456789012345678901234567890}}]}',
        # events the last key, where the cut around the array must not be fooled:
        b'{"\\u0065vents":[{"resourceType":"X","eventType":"Y"}],"events":[{"resourceType":"A","eventType":"B"}]}',
        b'{"events":[{"resourceType":"X","eventType":"Y"}],"\\u0065vents":[{"resourceType":"A","eventType":"B"}]}',
        b'{"a\\"events":[{"resourceType":"X","eventType":"Y"}],"events":[{"resourceType":"A","eventType":"B"}]}',
        b'{"x":1,"events":[{"resourceType":"X","eventType":"Y"}],"events":[{"resourceType":"A","eventType":"B"}]}',
        b'{"events":[{"resourceType":"A","eventType":"B"}],"a":{"events":[{"resourceType":"X","eventType":"Y"}]}}',
        b'{"events":[{"resourceType":"A","eventType":"B"}],"n":null}',
        b' \n{ "events" :\t[ {"resourceType":"A","eventType":"B"} ]\r\n} \n',
    ],
)
def test_fast_and_full_walks_agree(body: bytes) -> None:
    """Tricky layouts give the same events, byte for byte, whichever walk reads them."""
    from relay.ingest.parsing import _fast_walk, _walk_object

    full = _walk_object(body.decode(), 1000)[1]
    fast = _fast_walk(body, 1000)
    assert fast is None or [raw.decode() for _, raw in fast[1]] == [raw for _, raw in full]
    assert [e.text.decode() for e in parse_callback(body).events] == [raw for _, raw in full]
