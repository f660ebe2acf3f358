"""Signatures: CallFire's X-CallFire-Signature and the Standard Webhooks headers. Pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

CALLFIRE_HEADER = "X-CallFire-Signature"
WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"


def callfire_signature(secret: bytes, body: bytes) -> str:
    """base64(HMAC-SHA1(secret, body)), standard padded alphabet: what CallFire sends."""
    return base64.b64encode(hmac.digest(secret, body, hashlib.sha1)).decode()


def matching_secret(header: str | None, body: bytes, secrets: Iterable[bytes]) -> bytes | None:
    """The secret whose signature of ``body`` equals ``header``, compared in constant time.

    The header is compared as text with the canonical encoding, so a variant spelling of the same
    digest (non-zero padding bits) is refused. Every secret is tried, whichever matches, so the
    time taken does not tell which one did.
    """
    if not header:
        return None
    given = header.strip().encode("ascii", "replace")
    found: bytes | None = None
    for secret in secrets:
        expected = base64.b64encode(hmac.digest(secret, body, hashlib.sha1))
        if hmac.compare_digest(expected, given) and found is None:
            found = secret
    return found


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key for a secret: ``whsec_<base64>`` decodes, anything else is its UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :], validate=True)
        except ValueError:
            pass
    return secret.encode()


def standard_webhooks_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,`` + base64(HMAC-SHA256(key, "id.timestamp.body")), per the Standard Webhooks spec."""
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    return "v1," + base64.b64encode(hmac.digest(key, signed, hashlib.sha256)).decode()


class Signer:
    """Signs one webhook's deliveries with its secret: both HMAC keys are set up once (their
    padded key blocks hashed once per webhook) and copied for each delivery."""

    __slots__ = ("_sha1", "_sha256")

    def __init__(self, secret: str) -> None:
        self._sha1 = hmac.new(secret.encode(), digestmod=hashlib.sha1)
        self._sha256 = hmac.new(standard_webhooks_key(secret), digestmod=hashlib.sha256)

    def sign(self, headers: dict[str, str], msg_id: str, timestamp: int, body: bytes) -> None:
        """Add to ``headers`` the X-CallFire-Signature of ``body`` (``callfire_signature``) and
        its Standard Webhooks ``webhook-signature`` (``standard_webhooks_signature``)."""
        sha1 = self._sha1.copy()
        sha1.update(body)
        headers[CALLFIRE_HEADER] = base64.b64encode(sha1.digest()).decode()
        sha256 = self._sha256.copy()
        sha256.update(b"%s.%d.%s" % (msg_id.encode(), timestamp, body))
        headers[WEBHOOK_SIGNATURE] = "v1," + base64.b64encode(sha256.digest()).decode()
