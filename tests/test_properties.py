"""Property-based (hypothesis): arbitrary input never makes a 500 nor lets an unexpected
exception escape, from the running listener down to the pure parsers. Example counts are
bounded so the file runs in seconds."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from typing import Any
from unittest import mock

import pytest
import structlog
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from relay import selector
from relay.ingest.parsing import Callback, CallbackError, parse_callback
from relay.secrets import ApiCredentials, CallfireSecrets
from relay.settings import Settings
from relay.signing import (
    CALLFIRE_HEADER,
    callfire_signature,
    matching_secret,
    standard_webhooks_key,
)
from tests.callbacks import SECRET
from tests.hostile import CALLBACK, Served, exchange, served

FEW = settings(max_examples=150, deadline=None)
HTTP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
event_like = st.dictionaries(
    st.sampled_from(["resourceType", "eventType", "timestamp", "webhookId", "resource"])
    | st.text(max_size=4),
    json_values | st.sampled_from(["OutboundCall", "Finished", "", " "]),
    max_size=6,
)
callback_like = st.dictionaries(
    st.sampled_from(["timestamp", "webhookId", "webhookName", "resourceType", "events"]),
    json_values | st.lists(event_like | json_values, max_size=4),
    max_size=5,
)

valid_events = st.fixed_dictionaries(
    {"resourceType": st.text(min_size=1, max_size=12), "eventType": st.text(min_size=1, max_size=12)},
    optional={"timestamp": st.integers(), "webhookId": st.integers(), "resource": json_values},
).filter(lambda e: e["resourceType"].strip() and e["eventType"].strip())
valid_callbacks = st.fixed_dictionaries(
    {"events": st.lists(valid_events, min_size=1, max_size=3)},
    optional={"timestamp": st.integers(), "webhookId": st.integers(), "webhookName": st.text()},
)


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()


# --- the callback parser ---------------------------------------------------------------------


@FEW
@given(st.binary(max_size=2000))
def test_parser_on_arbitrary_bytes_raises_only_callback_error(body: bytes) -> None:
    """Any bytes: a Callback or a CallbackError (400/413), nothing else."""
    try:
        parse_callback(body, max_events=10)
    except CallbackError as exc:
        assert exc.status in (400, 413)


@FEW
@given(callback_like | valid_callbacks)
def test_parser_keeps_every_event_exactly(value: dict[str, Any]) -> None:
    """Callback-shaped JSON: refused with CallbackError, or every event's text decodes to the
    event that was sent, in order."""
    try:
        callback = parse_callback(encoded(value), max_events=10)
    except CallbackError:
        return
    assert isinstance(callback, Callback)
    assert [json.loads(e.text) for e in callback.events] == value["events"]


# --- signatures and credentials ----------------------------------------------------------------

secrets_lists = st.lists(st.binary(min_size=1, max_size=40), max_size=5)


@FEW
@given(st.text(max_size=60), st.binary(max_size=500), secrets_lists)
def test_signature_check_never_raises(header: str, body: bytes, secrets: list[bytes]) -> None:
    """Any header text, body and secrets: None or one of the secrets, never an exception."""
    found = matching_secret(header, body, secrets)
    assert found is None or found in secrets


@FEW
@given(st.binary(max_size=500), secrets_lists.filter(bool), st.data())
def test_a_real_signature_always_verifies(body: bytes, secrets: list[bytes], data: st.DataObject) -> None:
    """A signature made with any configured secret is accepted, with a secret that makes it."""
    signer = data.draw(st.sampled_from(secrets))
    header = callfire_signature(signer, body)
    found = matching_secret(header, body, secrets)
    assert found is not None and callfire_signature(found, body) == header


@FEW
@given(st.text(max_size=80))
def test_credential_check_never_raises(header: str) -> None:
    """Any Authorization header text: True or False."""
    assert ApiCredentials.parse("admin:pw,ops:pw2").check_header(header) in (True, False)


@FEW
@given(st.text(max_size=80))
def test_secret_parsers_raise_only_value_error(text: str) -> None:
    """RELAY_CALLFIRE_SECRETS, RELAY_API_CREDENTIALS and a Standard Webhooks secret from any text."""
    standard_webhooks_key(text)
    for parse in (CallfireSecrets.parse, ApiCredentials.parse):
        with contextlib.suppress(ValueError):
            parse(text)


# --- settings ----------------------------------------------------------------------------------

FIELDS = sorted(Settings.model_fields)
env_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=30)


@FEW
@given(st.dictionaries(st.sampled_from(FIELDS), env_text, max_size=4))
def test_settings_from_arbitrary_keywords_raise_only_validation_errors(values: dict[str, str]) -> None:
    """Settings(**{name: any text}) builds, or raises ValidationError."""
    with contextlib.suppress(ValidationError):
        Settings(**values)


@FEW
@given(st.dictionaries(st.sampled_from(FIELDS), env_text, max_size=4))
def test_settings_from_arbitrary_environment_raise_only_value_errors(values: dict[str, str]) -> None:
    """Any RELAY_* variables holding any text: Settings() builds, or raises a ValueError."""
    environ = {Settings.env_name(name): text for name, text in values.items()}
    with mock.patch.dict(os.environ, environ), contextlib.suppress(ValueError):
        Settings()  # or a ValueError (ValidationError is one)


@FEW
@given(st.text(max_size=200), st.sampled_from([".yaml", ".toml"]))
def test_settings_from_an_arbitrary_config_file_raise_only_value_errors(text: str, suffix: str) -> None:
    """RELAY_CONFIG naming a file of any text: Settings() builds, or raises a ValueError."""
    with tempfile.NamedTemporaryFile("w", suffix=suffix, encoding="utf-8", errors="surrogatepass") as file:
        file.write(text)
        file.flush()
        with mock.patch.dict(os.environ, {"RELAY_CONFIG": file.name}), contextlib.suppress(ValueError):
            Settings()


# --- the fields selector -------------------------------------------------------------------------

selector_text = st.text(st.sampled_from("ab(),  \t") | st.characters(), max_size=40)


@FEW
@given(selector_text)
def test_selector_parse_raises_only_selector_error(text: str) -> None:
    """Any selector text: a selection or a SelectorError naming the problem."""
    with contextlib.suppress(selector.SelectorError):
        selector.parse(text)


@FEW
@given(selector_text, st.binary(max_size=300) | json_values.map(encoded))
def test_selector_trim_raises_only_value_error(text: str, body: bytes) -> None:
    """Any selector over any body: JSON out, or a ValueError (bad selector, bad JSON)."""
    with contextlib.suppress(ValueError):
        json.loads(selector.trim(text, body))


def test_selector_nested_ten_thousand_deep_is_a_selector_error() -> None:
    """A selector nested 10,000 deep (a GET ?fields=...) is a SelectorError, not a RecursionError."""
    with pytest.raises(selector.SelectorError):
        selector.parse("a(" * 10_000 + ")" * 10_000)


# --- the running listener ------------------------------------------------------------------------


@pytest.fixture
async def listener(make_settings: Callable[..., Settings], redis: Any) -> AsyncIterator[Served]:
    async with served(make_settings(auth_failure_limit=0), redis) as server:
        yield server


header_names = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789!#$%&'*+-.^_`|~"), min_size=1, max_size=12
).filter(lambda n: n.lower() not in {"content-length", "transfer-encoding", "expect", "upgrade", "host"})
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(
    str.encode
) | st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
bodies = st.binary(max_size=1500) | callback_like.map(encoded) | valid_callbacks.map(encoded)
signatures = st.sampled_from([b"valid", b"valid", b"valid", None]) | header_values


def raw_request(body: bytes, signature: bytes | None, headers: list[tuple[str, bytes]]) -> bytes:
    lines = [f"POST {CALLBACK} HTTP/1.1".encode(), b"Host: relay.test"]
    if signature is not None:
        lines.append(CALLFIRE_HEADER.encode() + b": " + signature)
    lines += [name.encode() + b": " + value for name, value in headers]
    lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@HTTP
@given(
    bodies,
    signatures,
    st.lists(
        st.tuples(header_names | st.sampled_from(["Content-Encoding", "Content-Type"]), header_values),
        max_size=3,
    ),
)
async def test_listener_never_answers_500(
    listener: Served,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    signature: bytes | None,
    headers: list[tuple[str, bytes]],
) -> None:
    """Any body (signed validly or not) and any header values: an answer below 500, and no
    error logged by the handler or by aiohttp."""
    if signature == b"valid":
        signature = callfire_signature(SECRET.encode(), body).encode()
    with structlog.testing.capture_logs() as captured, caplog.at_level(logging.ERROR):
        response = await exchange(listener.port, raw_request(body, signature, headers))
    event(f"answered {response.status}")
    assert response.status < 500
    assert [e for e in captured if e["log_level"] in ("error", "critical")] == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(valid_callbacks)
async def test_listener_accepts_any_validly_signed_callback(listener: Served, value: dict[str, Any]) -> None:
    """Any callback with well-formed events (any ids, names, unicode), correctly signed: 200."""
    body = encoded(value)
    signature = callfire_signature(SECRET.encode(), body).encode()
    response = await exchange(listener.port, raw_request(body, signature, []))
    assert response.status == 200, response.body
