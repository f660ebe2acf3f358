"""What one attempt's result means. Pure.

- ``classify``: 2xx delivered; 410 gone (final: the webhook is switched off); a delivery the
  egress policy refuses, refused (final); every other answer (3xx and 4xx included: a receiver
  answering 401 or 404 during its own deploy recovers) and every network failure retried, as
  Svix, Convoy and the Standard Webhooks guidance do.
- What a retry is, and when it is due: ``relay.delivery.retry``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GONE = "gone"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptResult:
    """What one POST came to: a status, or an error (``refused``: the egress policy said no)."""

    status: int | None
    seconds: float
    error: str | None = None
    retry_after: str | None = None
    refused: bool = False
    answer: bytes = b""
    """The first bytes of the answer's body."""


def classify(result: AttemptResult) -> Verdict:
    if result.refused:
        return Verdict.REFUSED
    status = result.status
    if status is not None and 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 410:
        return Verdict.GONE
    return Verdict.RETRY


def status_class(result: AttemptResult) -> str:
    """``2xx``..``5xx``, or ``error`` when no response came (the metrics' label)."""
    return "error" if result.status is None else f"{result.status // 100}xx"


def describe(result: AttemptResult) -> str:
    """A few words on the result, for dead letters and the attempt log."""
    if result.status is None:
        return result.error or "no response"
    if 300 <= result.status < 400:
        return f"HTTP {result.status} (redirects are not followed)"
    return f"HTTP {result.status}"
