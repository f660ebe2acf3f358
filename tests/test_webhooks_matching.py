"""Whether a webhook wants an event (relay/webhooks/matching.py): resource, event, then filter."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from relay.webhooks import filters
from relay.webhooks.matching import wants
from relay.webhooks.model import Webhook
from relay.webhooks.view import build_index
from tests.callbacks import call_event, stream_event

FINISHED = stream_event(call_event("Finished"))


def webhook(
    resource: str = "OutboundCall", events: tuple[str, ...] = ("Finished",), **values: Any
) -> Webhook:
    """A stored webhook, as the view loads it (not re-validated)."""
    return Webhook.model_validate(
        {
            "id": 1, "resource": resource, "events": events, "callback": "http://x.test/",
            "createdAt": 1, "updatedAt": 1, **values,
        }
    )  # fmt: skip


@pytest.mark.parametrize(
    ("resource", "events", "filter_", "expected"),
    [
        ("OutboundCall", ("Finished",), None, True),
        ("OutboundCall", ("FINISHED",), None, True),
        ("InboundCall", ("Finished",), None, False),
        ("OutboundCall", ("Started",), None, False),
        ("OutboundCall", ("Finished",), {"resource.finalCallResult": "LA"}, True),
        ("OutboundCall", ("Finished",), {"resource.finalCallResult": "AM"}, False),
        ("InboundCall", ("Finished",), {"resource.finalCallResult": "LA"}, False),
    ],
)
def test_wants_table(resource: str, events: tuple[str, ...], filter_: Any, expected: bool) -> None:
    """Resource and event (any case) must match, and then the filter must hold."""
    assert wants(webhook(resource, events, filter=filter_), FINISHED) is expected


def test_a_filter_is_compiled_once() -> None:
    """One webhook version compiles its filter once; another webhook with the same filter (keys
    in any order) shares the predicate; true and 1, equal as Python values, are two filters."""
    one = webhook(filter={"resource.inbound": True, "x": 1})
    same = webhook(filter={"x": 1, "resource.inbound": True})
    other = webhook(filter={"resource.inbound": 1, "x": 1})
    assert one.predicate is one.predicate is same.predicate
    assert other.predicate is not one.predicate


def test_an_event_that_is_not_json_has_no_paths() -> None:
    """A poison event's JSON leaves every path missing for the filters, which never raise."""
    poison = dataclasses.replace(FINISHED, json=b"{not json")
    assert wants(webhook(filter={"eventType": "Finished"}), poison) is False
    assert wants(webhook(filter={"eventType": {"$exist": False}}), poison) is True


def test_a_stored_filter_that_does_not_compile_receives_nothing() -> None:
    """A damaged table's webhook (every write checks the filter) gets no event, and loads."""
    damaged = webhook(filter={"a": {"$regex": "x"}})
    assert damaged.predicate is filters.nothing
    assert wants(damaged, FINISHED) is False
    assert build_index([damaged])[0] == {1: damaged}
