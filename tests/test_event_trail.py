"""Where an event went, per webhook, from its outcome log: the state table."""

from __future__ import annotations

from typing import Any

import pytest

from relay.event_trail import entry_of, trail
from relay.events import StreamEvent

EVENT = StreamEvent(
    resource="OutboundCall", event="Finished", event_key="finished", cf_webhook_id=None,
    cf_webhook_name="", timestamp=None, received_at=1, callback="ab" * 32, index=2, json=b"{}",
)  # fmt: skip


def matched(*ids: int) -> dict[str, Any]:
    return {"at": 1, "outcome": "matched", "webhookIds": list(ids), "entry": "1/5-0"}


def attempt(webhook_id: int, outcome: str, retry_at: int | None = None) -> dict[str, Any]:
    return {"at": 2, "webhookId": webhook_id, "outcome": outcome, "retryAt": retry_at}


@pytest.mark.parametrize(
    ("log", "others", "expected"),
    [
        ([attempt(7, "delivered"), matched(7)], [], [(7, "delivered", None)]),
        ([attempt(7, "retry", 99), matched(7)], [], [(7, "retrying", 99)]),
        ([attempt(7, "dead"), attempt(7, "retry", 5), matched(7)], [], [(7, "dead-letter", None)]),
        ([attempt(7, "refused"), matched(7)], [], [(7, "dead-letter", None)]),
        ([attempt(7, "delivered"), attempt(7, "dead"), matched(7)], [], [(7, "delivered", None)]),
        ([matched(7)], [], [(7, "pending", None)]),
        ([matched()], [8], [(8, "not-matched", None)]),
        ([], [8], [(8, "pending", None)]),
        (
            [attempt(9, "delivered"), matched(7)], [8],
            [(7, "pending", None), (9, "delivered", None), (8, "not-matched", None)],
        ),
    ],
)  # fmt: skip
def test_state_per_webhook(log: list[dict[str, Any]], others: list[int], expected: list[Any]) -> None:
    """The newest record decides; without one, matched is pending, unmatched is not-matched."""
    got = trail(EVENT, log, others)
    assert [(d["webhookId"], d["state"], d["retryAt"]) for d in got] == expected


def test_each_delivery_has_its_webhook_id_and_attempts() -> None:
    """Each webhook's entry names the webhook-id its delivery has, and its records, newest first."""
    (got,) = trail(EVENT, [attempt(7, "delivered"), attempt(7, "retry", 3), matched(7)], [])
    assert got["deliveryId"] == EVENT.delivery_id(7)
    assert [a["outcome"] for a in got["attempts"]] == ["delivered", "retry"]


def test_entry_comes_from_the_matched_record() -> None:
    """The event's place on its stream is the one its matched record noted."""
    assert entry_of([attempt(7, "delivered"), matched(7)]) == "1/5-0"
    assert entry_of([]) is None
