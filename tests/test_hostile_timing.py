"""Constant-time checks: every configured secret and credential is compared, with
``hmac.compare_digest``, whichever one matches and whether any does (calls are counted)."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from relay import secrets, signing
from relay.secrets import ApiCredentials
from relay.settings import Settings
from relay.signing import callfire_signature, matching_secret
from tests.callbacks import callback_body, signed
from tests.hostile import exchange, request_head, served

SECRETS = [b"first-secret", b"second-secret", b"third-secret", b"fourth-secret"]
BODY = b'{"name":"test webhook", "callback":"sms:callfire"}'


class Counted:
    """A stand-in for the ``hmac`` module that counts ``digest`` and ``compare_digest`` calls."""

    def __init__(self) -> None:
        self.digests = 0
        self.compares = 0

    def digest(self, key: bytes, msg: bytes, digest: Any) -> bytes:
        self.digests += 1
        return hmac.digest(key, msg, digest)

    def compare_digest(self, a: bytes, b: bytes) -> bool:
        self.compares += 1
        return hmac.compare_digest(a, b)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counted:
    """``relay.signing`` and ``relay.secrets`` see the counting ``hmac``."""
    counter = Counted()
    fake = SimpleNamespace(digest=counter.digest, compare_digest=counter.compare_digest)
    monkeypatch.setattr(signing, "hmac", fake)
    monkeypatch.setattr(secrets, "hmac", fake)
    return counter


@pytest.mark.parametrize(
    "header",
    [
        callfire_signature(SECRETS[0], BODY),
        callfire_signature(SECRETS[-1], BODY),
        callfire_signature(b"unknown", BODY),
        "not base64 at all!",
    ],
    ids=["first-matches", "last-matches", "none-matches", "undecodable"],
)
def test_signature_check_computes_and_compares_every_secret(counted: Counted, header: str) -> None:
    """matching_secret HMACs the body with every secret and compares each, whichever matches."""
    matching_secret(header, BODY, SECRETS)
    assert counted.digests == len(SECRETS)
    assert counted.compares == len(SECRETS)


def test_signature_check_still_finds_the_matching_secret(counted: Counted) -> None:
    """Trying every secret does not change the answer: the one that signed is returned."""
    assert matching_secret(callfire_signature(SECRETS[2], BODY), BODY, SECRETS) == SECRETS[2]


PAIRS = "alice:pw-one,bob:pw-two,carol:pw-three"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("user", "password", "accepted"),
    [
        ("alice", "pw-one", True),
        ("carol", "pw-three", True),
        ("alice", "wrong", False),
        ("nobody", "pw-two", False),
        ("", "", False),
    ],
)
def test_credential_check_compares_every_user_and_password(
    counted: Counted, user: str, password: str, accepted: bool
) -> None:
    """check_header compares the user and the password of every pair, whichever matches."""
    credentials = ApiCredentials.parse(PAIRS)
    assert credentials.check_header(basic(user, password)) is accepted
    assert counted.compares == 2 * len(credentials.pairs)


@pytest.mark.parametrize(
    ("signer", "webhook_id", "status"),
    [("first-secret", 1001, 200), ("fourth-secret", 8, 200), ("wrong-secret", 1001, 401)],
)
async def test_listener_compares_every_configured_secret(
    counted: Counted,
    make_settings: Callable[..., Settings],
    redis: Any,
    signer: str,
    webhook_id: int,
    status: int,
) -> None:
    """Through the running listener, one callback costs one comparison per configured secret,
    shared or bound to a webhook id, whichever signed it."""
    configured = "first-secret,second-secret,7:third-secret,8:fourth-secret"
    settings = make_settings(callfire_secrets=configured, auth_failure_limit=0)
    body = callback_body(webhook_id=webhook_id)
    async with served(settings, redis) as server:
        head = request_head(headers=signed(body, signer), length=len(body))
        response = await exchange(server.port, head + body)
    assert response.status == status
    assert counted.compares == 4
