"""What an attempt's result means, pure: delivered, retried, gone, rejected, refused."""

from __future__ import annotations

import pytest

from relay.delivery.policy import AttemptResult, Verdict, classify, describe


def status(code: int, retry_after: str | None = None) -> AttemptResult:
    return AttemptResult(status=code, seconds=0.01, retry_after=retry_after)


ERROR = AttemptResult(status=None, seconds=1.0, error="timed out after 10s")


@pytest.mark.parametrize(
    ("result", "verdict"),
    [
        (status(200), Verdict.DELIVERED),
        (status(204), Verdict.DELIVERED),
        (status(299), Verdict.DELIVERED),
        (ERROR, Verdict.RETRY),
        (status(408), Verdict.RETRY),
        (status(429), Verdict.RETRY),
        (status(500), Verdict.RETRY),
        (status(503), Verdict.RETRY),
        (status(410), Verdict.GONE),
        (status(400), Verdict.RETRY),
        (status(401), Verdict.RETRY),
        (status(403), Verdict.RETRY),
        (status(404), Verdict.RETRY),
        (status(413), Verdict.RETRY),
        (status(301), Verdict.RETRY),
        (status(302), Verdict.RETRY),
        (status(304), Verdict.RETRY),
        (status(501), Verdict.RETRY),
        (AttemptResult(status=None, seconds=0.0, error="egress refused: x", refused=True), Verdict.REFUSED),
    ],
)
def test_classification(result: AttemptResult, verdict: Verdict) -> None:
    """2xx delivered; 410 gone; refused refused; every other status (3xx, 4xx, 5xx) and every
    network failure retried."""
    assert classify(result) == verdict


def test_redirect_is_described_as_not_followed() -> None:
    """A 3xx in a dead letter says why it failed."""
    assert describe(status(301)) == "HTTP 301 (redirects are not followed)"
