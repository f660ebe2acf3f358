"""`relay receive`, the test receiver: it judges signatures as a subscriber would."""

from __future__ import annotations

from multidict import CIMultiDict

from relay.cli.receive import verdict
from relay.signing import WEBHOOK_ID, WEBHOOK_TIMESTAMP, Signer

BODY = b'{"webhookId":1,"events":[{"resource":{"id":7420017300281076000}}]}'


def signed_headers(secret: str) -> CIMultiDict[str]:
    """The headers the relay signs a delivery of BODY with, as the worker's Signer makes them."""
    headers = {WEBHOOK_ID: "msg_1", WEBHOOK_TIMESTAMP: "1700000000"}
    Signer(secret).sign(headers, "msg_1", 1700000000, BODY)
    return CIMultiDict(headers)


def test_both_signatures_verify_with_the_right_secret() -> None:
    """A delivery signed by the relay with the webhook's secret passes both checks."""
    headers = signed_headers("my-secret")
    assert verdict("my-secret", headers, BODY) == {
        "webhookId": "msg_1",
        "callfireSignatureOk": True,
        "standardSignatureOk": True,
    }


def test_wrong_secret_or_changed_body_fails_both() -> None:
    """Another secret, or one byte changed, fails both checks."""
    headers = signed_headers("my-secret")
    assert verdict("other", headers, BODY)["callfireSignatureOk"] is False
    changed = verdict("my-secret", headers, BODY.replace(b"1,", b"2,"))
    assert not changed["callfireSignatureOk"] and not changed["standardSignatureOk"]
