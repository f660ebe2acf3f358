"""Signatures: CallFire's scheme and the Standard Webhooks scheme, as receivers check them."""

from __future__ import annotations

import base64

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook

from relay.signing import (
    callfire_signature,
    matching_secret,
    outbound_headers,
    standard_webhooks_key,
)

VECTOR_BODY = b'{"name":"test webhook", "callback":"sms:callfire"}'


def test_callfire_test_vector() -> None:
    """CallFire's own published vector: secret `mysecrets` signs to v14pF7d5C1+CHNIEWlg+sw9v0Xg=."""
    assert callfire_signature(b"mysecrets", VECTOR_BODY) == "v14pF7d5C1+CHNIEWlg+sw9v0Xg="


def test_matching_secret_finds_the_one_that_signed() -> None:
    """Of several valid secrets (rotation), the one that signed the body is returned."""
    header = callfire_signature(b"new", VECTOR_BODY)
    assert matching_secret(header, VECTOR_BODY, [b"old", b"new"]) == b"new"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "not base64!",
        callfire_signature(b"other", VECTOR_BODY),
        "v14pF7d5C1+CHNIEWlg+sw9v0Xg",
    ],
)
def test_matching_secret_refuses_bad_headers(header: str | None) -> None:
    """Missing, malformed, unpadded or foreign signatures match no secret."""
    assert matching_secret(header, VECTOR_BODY, [b"mysecrets"]) is None


def test_signature_covers_every_byte() -> None:
    """A body changed by one space no longer verifies."""
    header = callfire_signature(b"mysecrets", VECTOR_BODY)
    assert matching_secret(header, VECTOR_BODY.replace(b", ", b","), [b"mysecrets"]) is None


def test_whsec_secret_decodes_to_its_bytes() -> None:
    """A `whsec_<base64>` secret keys HMAC-SHA256 with the decoded bytes; others with UTF-8."""
    raw = b"\x00\x01binary-key"
    assert standard_webhooks_key("whsec_" + base64.b64encode(raw).decode()) == raw
    assert standard_webhooks_key("plain secret") == b"plain secret"


@pytest.mark.parametrize("secret", ["plain secret", "whsec_" + base64.b64encode(b"k" * 24).decode()])
def test_standard_webhooks_library_verifies_outbound_headers(secret: str) -> None:
    """The public standardwebhooks library verifies what the relay sends, for both secret kinds."""
    import time

    body = b'{"webhookId":1,"events":[{"id":7420017300281076000}]}'
    now = int(time.time())
    headers = outbound_headers(secret, "msg_abc_0_1", now, body)
    key = secret if secret.startswith("whsec_") else secret.encode()
    StandardWebhook(key).verify(body, headers)  # raises on a bad signature
    assert headers["X-CallFire-Signature"] == callfire_signature(secret.encode(), body)
