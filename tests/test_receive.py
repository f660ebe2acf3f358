"""`relay receive`, the test receiver: it judges signatures as a subscriber would."""

from __future__ import annotations

from multidict import CIMultiDict

from relay.cli.receive import verdict
from relay.signing import outbound_headers

BODY = b'{"webhookId":1,"events":[{"resource":{"id":7420017300281076000}}]}'


def test_both_signatures_verify_with_the_right_secret() -> None:
    """A delivery signed by the relay with the webhook's secret passes both checks."""
    headers = CIMultiDict(outbound_headers("my-secret", "msg_1", 1700000000, BODY))
    assert verdict("my-secret", headers, BODY) == {
        "webhookId": "msg_1",
        "callfireSignatureOk": True,
        "standardSignatureOk": True,
    }


def test_wrong_secret_or_changed_body_fails_both() -> None:
    """Another secret, or one byte changed, fails both checks."""
    headers = CIMultiDict(outbound_headers("my-secret", "msg_1", 1700000000, BODY))
    assert verdict("other", headers, BODY)["callfireSignatureOk"] is False
    changed = verdict("my-secret", headers, BODY.replace(b"1,", b"2,"))
    assert not changed["callfireSignatureOk"] and not changed["standardSignatureOk"]
