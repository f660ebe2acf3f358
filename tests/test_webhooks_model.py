"""The Webhook model: validation, partial updates, storage and what the API shows. No Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from relay.webhooks.model import Webhook, WebhookBody, WebhookSpec, merged, stored
from relay.webhooks.query import WebhookQuery, index_terms

NOW = 1_700_000_000_000
VALID: dict[str, Any] = {
    "resource": "CallBroadcast",
    "events": ["started", "FINISHED"],
    "callback": "https://example.test/hook",
}


def body(**values: Any) -> WebhookBody:
    return WebhookBody.model_validate(values)


def create(**values: Any) -> WebhookSpec:
    return merged(None, body(**{**VALID, **values}), NOW)


def error_fields(exc: ValidationError) -> set[str]:
    return {str(err["loc"][0]) for err in exc.errors() if err["loc"]}


def test_events_take_the_catalogue_spelling() -> None:
    """Events match case-insensitively and are stored as the catalogue spells them, once each."""
    spec = create(events=["finished", "STARTED", "Finished"])
    assert spec.events == ("Finished", "Started")


INVALID = [
    ({"resource": "Nope"}, "resource"),
    ({"events": ["ValidationFinished"]}, "events"),
    ({"events": []}, "events"),
    ({"callback": "/relative"}, "callback"),
    ({"callback": "ftp://example.test/x"}, "callback"),
    ({"callback": "http://"}, "callback"),
    ({"callback": "http://example.test:99999/"}, "callback"),
    ({"callback": "http://exa mple.test/"}, "callback"),
    ({"fields": "items("}, "fields"),
    ({"expiresAt": NOW - 1}, "expiresAt"),
]


@pytest.mark.parametrize(("values", "field"), INVALID)
def test_invalid_field_is_named(values: dict[str, Any], field: str) -> None:
    """Each invalid value is refused, and the error names its field by its JSON name."""
    with pytest.raises(ValidationError) as caught:
        create(**values)
    assert error_fields(caught.value) == {field}


@pytest.mark.parametrize("missing", ["resource", "events", "callback"])
def test_create_needs_resource_events_and_callback(missing: str) -> None:
    """A create without resource, events or callback is refused naming it."""
    values = {k: v for k, v in VALID.items() if k != missing}
    with pytest.raises(ValidationError) as caught:
        merged(None, body(**values), NOW)
    assert missing in error_fields(caught.value)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"enabled": "true"}, "enabled"),
        ({"expiresAt": "5"}, "expiresAt"),
        ({"events": "Finished"}, "events"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_body_types_are_strict(values: dict[str, Any], field: str) -> None:
    """A body field of the wrong JSON type, or an unknown field, is refused naming it."""
    with pytest.raises(ValidationError) as caught:
        WebhookBody.model_validate_json(json.dumps(values))
    assert error_fields(caught.value) == {field}


def test_read_only_fields_are_ignored() -> None:
    """id, createdAt and updatedAt in a body change nothing."""
    assert body(id=5, createdAt=1, updatedAt=2).changes() == {}


def test_partial_update_keeps_other_fields() -> None:
    """Applying a body to a current spec changes only the fields present."""
    current = create(name="a", secret="s", fields="webhookId")
    updated = merged(current, body(name="b"), NOW)
    assert updated.name == "b"
    assert updated.secret is not None and updated.secret.get_secret_value() == "s"
    assert (updated.resource, updated.events, updated.fields) == (
        current.resource,
        current.events,
        "webhookId",
    )


def test_update_is_validated_as_a_whole() -> None:
    """Changing only the resource re-checks the current events against it."""
    current = create()
    with pytest.raises(ValidationError) as caught:
        merged(current, body(resource="ContactList"), NOW)
    assert error_fields(caught.value) == {"events"}


def test_null_empties_a_nullable_field() -> None:
    """null on name, secret, expiresAt or fields empties it."""
    current = create(name="a", secret="s", expiresAt=NOW + 10, fields="id")
    updated = merged(current, body(name=None, secret=None, expiresAt=None, fields=None), NOW)
    assert (updated.name, updated.secret, updated.expires_at, updated.fields) == (None, None, None, None)


def test_null_on_other_fields_means_not_given() -> None:
    """null on enabled, resource or callback keeps the current value."""
    current = create(enabled=False)
    updated = merged(current, body(enabled=None, resource=None, callback=None), NOW)
    assert (updated.enabled, updated.resource, updated.callback) == (
        False,
        current.resource,
        current.callback,
    )


def test_past_expiry_already_stored_does_not_block_other_changes() -> None:
    """expiresAt is checked against now only when the body sets it."""
    current = create(expiresAt=NOW + 1)
    updated = merged(current, body(name="later"), NOW + 100)
    assert updated.expires_at == NOW + 1


@pytest.mark.parametrize(
    ("enabled", "expires_at", "now", "live"),
    [(True, None, NOW, True), (False, None, NOW, False), (True, NOW + 1, NOW, True), (True, NOW, NOW, False)],
)
def test_live(enabled: bool, expires_at: int | None, now: int, live: bool) -> None:
    """A webhook fires while enabled and before its expiresAt."""
    webhook = stored(create(enabled=enabled), webhook_id=1, created_at=NOW, now_ms=NOW)
    webhook = webhook.model_copy(update={"expires_at": expires_at})
    assert webhook.live(now) is live


def test_storage_round_trip_keeps_the_secret() -> None:
    """What is stored holds the secret and reads back equal."""
    webhook = stored(create(secret="s3cret", name="n"), webhook_id=9, created_at=NOW, now_ms=NOW + 1)
    raw = webhook.to_storage()
    assert b"s3cret" in raw
    assert Webhook.from_storage(raw) == webhook


def test_output_never_holds_the_secret() -> None:
    """The API's view of a webhook has no secret, and its repr masks it."""
    webhook = stored(create(secret="s3cret"), webhook_id=9, created_at=NOW, now_ms=NOW)
    assert "secret" not in webhook.out()
    assert "s3cret" not in repr(webhook) + str(webhook.out())


def test_output_names_and_order() -> None:
    """The output uses CallFire's names, id first, absent optional fields left out."""
    webhook = stored(create(), webhook_id=9, created_at=NOW, now_ms=NOW + 1)
    assert webhook.out() == {
        "id": 9,
        "resource": "CallBroadcast",
        "events": ["Started", "Finished"],
        "callback": "https://example.test/hook",
        "enabled": True,
        "singleUse": False,
        "nonStrictSsl": False,
        "createdAt": NOW,
        "updatedAt": NOW + 1,
    }


def test_query_terms_are_a_subset_of_a_matching_webhooks_terms() -> None:
    """A query that should match a webhook names only index terms that webhook carries."""
    webhook = stored(create(name="n"), webhook_id=1, created_at=NOW, now_ms=NOW)
    query = WebhookQuery(
        name="n", resource="CallBroadcast", event="STARTED", callback=webhook.callback, enabled=True
    )
    assert set(query.terms()) <= set(index_terms(webhook))
    assert not set(WebhookQuery(event="stopped").terms()) <= set(index_terms(webhook))


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"name": "n" * 1025}, "name"),
        ({"callback": "http://x.test/" + "p" * 2048}, "callback"),
        ({"secret": "s" * 1025}, "secret"),
        ({"events": ["Finished"] * 33}, "events"),
    ],
)
def test_body_lengths_are_bounded(values: dict[str, Any], field: str) -> None:
    """Strings and lists in a body have bounds, so no index key or stored JSON grows unbounded."""
    with pytest.raises(ValidationError) as caught:
        WebhookBody.model_validate(values)
    assert error_fields(caught.value) == {field}
