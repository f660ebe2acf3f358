"""Realistic CallFire callbacks of about 1 KB, each body unique, signed as CallFire signs them. Pure.

Bodies must be unique: the relay drops a repeated body as a duplicate without writing it, which
would measure the dedup path instead of the full one. The unique part is the call's id, which is
also the token the sink reads back to time a delivery end to end.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from relay.signing import CALLFIRE_HEADER, callfire_signature

SECRET = "bench-callfire-secret"
CF_WEBHOOK_ID = 4242
_ID = 987654321987654321
"""A sentinel id, replaced by each body's own id (ids past 2**53 are what CallFire sends)."""


def call_event(call_id: int, now_ms: int) -> dict[str, object]:
    """An ``OutboundCall`` ``Finished`` event, shaped like CallFire's published samples."""
    return {
        "timestamp": now_ms,
        "webhookId": CF_WEBHOOK_ID,
        "resourceType": "OutboundCall",
        "eventType": "Finished",
        "resource": {
            "id": call_id,
            "fromNumber": "12135551189",
            "toNumber": "12135551100",
            "state": "FINISHED",
            "campaignId": 20488423003,
            "batchId": 11466592003,
            "contact": {
                "id": 9872389723,
                "homePhone": "12135551100",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "zipcode": "90012",
                "properties": {"customerTier": "gold", "accountNumber": "A-0001942"},
            },
            "inbound": False,
            "created": now_ms - 61_000,
            "modified": now_ms - 1_000,
            "labels": ["billing", "reminder"],
            "finalCallResult": "LA",
            "records": [
                {
                    "id": 11023988003,
                    "billedAmount": 1.1667,
                    "finishTime": now_ms - 1_000,
                    "callResult": "LA",
                    "originateTime": now_ms - 60_000,
                    "answerTime": now_ms - 55_000,
                    "duration": 35,
                    "questionResponses": [{"question": "confirm", "response": "1"}],
                    "recordings": [],
                }
            ],
            "agentCall": False,
            "transferNumber": None,
            "callData": "invoice-2024-0042",
        },
    }


def template(now_ms: int) -> tuple[bytes, bytes]:
    """A callback body split around its call id: ``head + str(id) + tail`` is a whole body."""
    event = call_event(_ID, now_ms)
    body = orjson.dumps(
        {
            "timestamp": now_ms,
            "webhookId": CF_WEBHOOK_ID,
            "webhookName": "bench outbound calls",
            "resourceType": "OutboundCall",
            "events": [event],
        }
    )
    head, sep, tail = body.partition(str(_ID).encode())
    assert sep, "the sentinel id is in the body"
    return head, tail


class Signer:
    """Signed bodies from a template: the id varies, so every body is a new callback."""

    def __init__(self, now_ms: int, secret: str = SECRET) -> None:
        self.head, self.tail = template(now_ms)
        self.key = secret.encode()

    def body(self, call_id: int) -> bytes:
        return b"%s%d%s" % (self.head, call_id, self.tail)

    def signed(self, call_id: int) -> tuple[bytes, dict[str, str]]:
        body = self.body(call_id)
        return body, {CALLFIRE_HEADER: callfire_signature(self.key, body), "Content-Type": "application/json"}

    def lines(self, first_id: int, count: int) -> Iterator[bytes]:
        """``signature TAB body`` lines, as the wrk script reads them."""
        for call_id in range(first_id, first_id + count):
            body = self.body(call_id)
            yield callfire_signature(self.key, body).encode() + b"\t" + body + b"\n"


def token_of(outbound_body: bytes) -> int | None:
    """The call id inside a delivered body (the relay's envelope around the event's JSON)."""
    try:
        data = orjson.loads(outbound_body)
        return int(data["events"][0]["resource"]["id"])
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
        return None
