"""A delivery's forms (stream fields, sorted-set member) and its signed request. Pure."""

from __future__ import annotations

import base64
import dataclasses
import time
from typing import Any

import orjson
import pytest
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from relay.delivery.message import Delivery, OutboundRequest, Prepared
from relay.events import StreamEvent, events_of, outbound_body
from relay.ingest.parsing import parse_callback
from relay.webhooks.model import Webhook
from tests.callbacks import as_stored, call_event, callback_body
from tests.sink import Received, callfire_valid, standard_verified

NOW = 1_700_000_000.0


def an_event(call_id: int = 7420017300281076000) -> StreamEvent:
    (event,) = events_of(parse_callback(callback_body(call_event(call_id=call_id))), 1)
    return event


def a_webhook(**fields: Any) -> Webhook:
    values: dict[str, Any] = {
        "id": 42,
        "name": "billing",
        "resource": "OutboundCall",
        "events": ("Finished",),
        "callback": "https://hooks.example/cf",
        "secret": SecretStr("plain-secret"),
        "createdAt": 1,
        "updatedAt": 1,
    }
    values.update(fields)
    return Webhook.model_validate(values)


def received(request: OutboundRequest) -> Received:
    return Received("/", {k.lower(): v for k, v in request.headers.items()}, request.body, 0.0)


def test_stream_fields_round_trip() -> None:
    """A delivery written as entry fields reads back the same."""
    delivery = Delivery(42, 3, an_event())
    assert Delivery.from_fields(as_stored(delivery.to_fields())) == delivery


@pytest.mark.parametrize("missing", [b"webhook", b"attempt", b"m", b"json"])
def test_incomplete_fields_are_poison(missing: bytes) -> None:
    """An entry lacking a field is refused with KeyError (the worker dead-letters it as poison)."""
    fields = as_stored(Delivery(42, 1, an_event()).to_fields())
    del fields[missing]
    with pytest.raises(KeyError):
        Delivery.from_fields(fields)


def test_body_is_the_callfire_envelope_with_the_event_exact() -> None:
    """The relay webhook's id and name, the resource type, and the event's JSON untouched."""
    event = an_event()
    request = Prepared(a_webhook()).request(Delivery(42, 1, event), NOW)
    head = orjson.loads(request.body)
    assert (head["webhookId"], head["webhookName"], head["resourceType"]) == (42, "billing", "OutboundCall")
    assert request.body.endswith(b'"events":[' + event.json + b"]}")


def test_signatures_verify_like_a_receiver_would() -> None:
    """X-CallFire-Signature and webhook-signature both verify with the plain secret."""
    request = Prepared(a_webhook()).request(Delivery(42, 1, an_event()), NOW)
    got = received(request)
    assert callfire_valid(got, "plain-secret")
    assert not callfire_valid(got, "another-secret")
    with pytest.raises(WebhookVerificationError):  # signed at NOW, long ago: too old
        standard_verified(got, "plain-secret")


def test_whsec_secret_signs_with_its_decoded_bytes() -> None:
    """A `whsec_<base64>` secret keys the Standard Webhooks HMAC with the decoded bytes."""
    key = base64.b64encode(b"0123456789abcdef").decode()
    webhook = a_webhook(secret=SecretStr(f"whsec_{key}"))
    request = Prepared(webhook).request(Delivery(42, 1, an_event()), time.time())
    StandardWebhook(f"whsec_{key}").verify(request.body, {k.lower(): v for k, v in request.headers.items()})


def test_webhook_id_is_stable_across_attempts() -> None:
    """Every attempt of one delivery carries the same webhook-id; another webhook's differs."""
    event = an_event()
    first = Prepared(a_webhook()).request(Delivery(42, 1, event), NOW).headers["webhook-id"]
    later = Prepared(a_webhook()).request(Delivery(42, 5, event), NOW + 600).headers["webhook-id"]
    other = Prepared(a_webhook(id=43)).request(Delivery(43, 1, event), NOW).headers["webhook-id"]
    assert first == later != other


def test_without_a_secret_nothing_is_signed() -> None:
    """A webhook without a secret gets no signature headers (the id and timestamp still)."""
    headers = Prepared(a_webhook(secret=None)).request(Delivery(42, 1, an_event()), NOW).headers
    assert "X-CallFire-Signature" not in headers and "webhook-signature" not in headers
    assert headers["webhook-timestamp"] == str(int(NOW))


def test_fields_trim_keeps_big_ids_exact() -> None:
    """`fields` trims the envelope; an id past 2^53 survives byte for byte."""
    webhook = a_webhook(fields="webhookId,events(resource(id))")
    body = Prepared(webhook).request(Delivery(42, 1, an_event()), NOW).body
    assert body == b'{"webhookId":42,"events":[{"resource":{"id":7420017300281076000}}]}'


def test_non_strict_ssl_turns_verification_off_for_that_webhook() -> None:
    """nonStrictSsl: true -> no certificate verification; the default verifies."""
    assert not Prepared(a_webhook(nonStrictSsl=True)).request(Delivery(42, 1, an_event()), NOW).verify_ssl
    assert Prepared(a_webhook()).request(Delivery(42, 1, an_event()), NOW).verify_ssl


@pytest.mark.parametrize("name", [None, "billing", 'quo"te \\ back', "café 😀 \u2028"])
@pytest.mark.parametrize("timestamp", [None, 1_700_000_000_123])
def test_prepared_body_is_the_envelope_byte_for_byte(name: str | None, timestamp: int | None) -> None:
    """The envelope a prepared webhook makes is `relay.events.outbound_body`'s, exactly."""
    event = dataclasses.replace(an_event(), timestamp=timestamp)
    webhook = a_webhook(name=name)
    assert Prepared(webhook).body(event) == outbound_body(event, 42, name or "")


def test_a_line_break_in_the_delivery_id_makes_the_delivery_poison() -> None:
    """An entry whose callback id would break the webhook-id header line cannot become a request."""
    event = dataclasses.replace(an_event(), callback="ab\r\nX-Evil: 1")
    with pytest.raises(ValueError, match="line break"):
        Prepared(a_webhook()).request(Delivery(42, 1, event), NOW)
