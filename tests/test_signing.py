"""Signatures: CallFire's scheme and the Standard Webhooks scheme, as receivers check them."""

from __future__ import annotations

import base64

import pytest

from relay.signing import (
    Signer,
    callfire_signature,
    matching_secret,
    standard_webhooks_key,
    standard_webhooks_signature,
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
def test_signer_signs_as_both_schemes_do(secret: str) -> None:
    """A webhook's Signer gives CallFire's signature and the Standard Webhooks one, for both secret kinds."""
    body = b'{"webhookId":1,"events":[{"id":7420017300281076000}]}'
    headers: dict[str, str] = {}
    Signer(secret).sign(headers, "msg_abc_0_1", 1_700_000_000, body)
    key = standard_webhooks_key(secret)
    assert headers == {
        "X-CallFire-Signature": callfire_signature(secret.encode(), body),
        "webhook-signature": standard_webhooks_signature(key, "msg_abc_0_1", 1_700_000_000, body),
    }
