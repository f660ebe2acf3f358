"""relay.notices: what an operational event says, made from an outbox item. Pure."""

from __future__ import annotations

import orjson
import pytest

from relay.catalog import RESOURCES, canonical_event
from relay.events import StreamEvent
from relay.notices import context, parse, public_callback, quiet
from tests.callbacks import call_event, stream_event


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@crm.example/hook?x=1", "https://crm.example/hook?x=1"),
        ("https://user@crm.example:8443/hook", "https://crm.example:8443/hook"),
        ("http://crm.example/hook", "http://crm.example/hook"),
        ("http://a:b@[::1]:9000/h", "http://[::1]:9000/h"),
    ],
)
def test_callback_without_credentials(url: str, shown: str) -> None:
    """A notice names the callback without its user:password part."""
    assert public_callback(url) == shown


def test_the_catalogue_lists_the_operational_events() -> None:
    """RelayWebhook and its four events are subscribable, matched case-insensitively."""
    assert RESOURCES["RelayWebhook"] == ("Disabled", "Failing", "Recovered", "DeadLettered")
    assert canonical_event("RelayWebhook", "deadlettered") == "DeadLettered"


def _item(**fields: object) -> bytes:
    ctx = context(7, "crm", "https://u:p@crm.example/hook", 503, None)
    return orjson.dumps({"at": 1_700_000_000_123, "seq": 4, "ctx": ctx.decode(), **fields})


def test_an_item_is_a_callfire_shaped_event() -> None:
    """The event: CallFire's shape, the webhook as its resource, its reason and last status."""
    event = _event(_item(event="Failing", failures=10))
    assert (event.resource, event.event, event.event_key, event.timestamp) == (
        "RelayWebhook",
        "Failing",
        "failing",
        1_700_000_000_123,
    )
    assert orjson.loads(event.json) == {
        "timestamp": 1_700_000_000_123,
        "resourceType": "RelayWebhook",
        "eventType": "Failing",
        "resource": {
            "id": 7,
            "name": "crm",
            "callback": "https://crm.example/hook",
            "reason": "10 failed attempts in a row: its deliveries are paused",
            "lastStatus": 503,
            "lastError": None,
        },
    }


def test_dead_lettered_carries_its_count() -> None:
    """DeadLettered says how many letters it stands for, and the last one's reason."""
    event = _event(_item(event="DeadLettered", count=3, reason="exhausted: gave up"))
    resource = orjson.loads(event.json)["resource"]
    assert (resource["count"], resource["reason"]) == (3, "exhausted: gave up")


def test_the_same_item_is_the_same_event() -> None:
    """Moved onto a stream twice (a worker died in between), an item keeps its event id; two items
    never share one."""
    one, again = _event(_item(event="Recovered")), _event(_item(event="Recovered"))
    other = _event(_item(event="Recovered", seq=5))
    assert one.id == again.id != other.id
    assert one.delivery_id(3) == again.delivery_id(3)


UNREADABLE = [b"{}", b"[1]", b"nope", b'{"event":"Failing","at":1,"ctx":"{}"}', b'{"at":1,"ctx":""}']


@pytest.mark.parametrize("item", UNREADABLE)
def test_an_unreadable_item_raises(item: bytes) -> None:
    """Anything else is refused with a ValueError, KeyError or TypeError (the drain drops it)."""
    with pytest.raises((ValueError, KeyError, TypeError)):
        parse(item)


def test_an_auto_disable_carries_its_switch_off() -> None:
    """An auto-disable's item names the webhook to switch off, announced or (quiet) not."""
    announced = parse(_item(event="Disabled", off=7, reason="it kept failing"))
    assert (announced.switch_off, announced.reason) == (7, "it kept failing")
    assert announced.event is not None and announced.event.event == "Disabled"
    silent = parse(b'{"event":"Disabled","at":1,"seq":2,"ctx":"","off":7,"reason":"r"}')
    assert (silent.switch_off, silent.event) == (7, None)


def test_only_operational_events_are_quiet() -> None:
    """Deliveries of RelayWebhook events raise no notice; all others may."""
    assert not quiet(stream_event(call_event()))
    assert quiet(_event(_item(event="Disabled", reason="gone")))


def _event(item: bytes) -> StreamEvent:
    event = parse(item).event
    assert event is not None
    return event
