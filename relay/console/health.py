"""A webhook's health as the console shows it, from its recent delivery attempts; and a callback
URL with its secrets masked. Pure.

The attempt log keeps the newest ``RELAY_ATTEMPTS_KEPT`` records of a webhook, so health is
judged over those: a success older than them is unknown, and a failure streak as long as the
whole log is shown as "at least" that long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    last_success: int | None
    """Unix ms of the newest delivered attempt kept; None when none is."""
    last_failure: dict[str, Any] | None
    """The newest attempt that did not deliver (``at``, ``status``, ``error``, ``outcome``)."""
    failure_streak: int
    """Attempts that did not deliver since the last one that did, newest first."""
    streak_is_whole_log: bool
    """True when the log is full and every attempt in it failed: the streak is at least
    ``failure_streak`` (older failures were trimmed)."""
    attempts: int
    """Attempts the verdict is drawn from."""

    @property
    def state(self) -> str:
        """``healthy``, ``failing``, or ``unknown`` (no attempt kept)."""
        if self.attempts == 0:
            return "unknown"
        return "failing" if self.failure_streak else "healthy"


def health_of(records: Sequence[dict[str, Any]], kept: int) -> Health:
    """``records`` newest first, as ``GET /v2/webhooks/{id}/deliveries`` returns them; ``kept``:
    how many the log holds at most."""
    last_success: int | None = None
    last_failure: dict[str, Any] | None = None
    streak = 0
    for record in records:
        if record.get("outcome") == "delivered":
            last_success = int(record["at"])
            break
        streak += 1
        if last_failure is None:
            last_failure = record
    if last_failure is None:
        last_failure = next((r for r in records if r.get("outcome") != "delivered"), None)
    fields = ("at", "status", "error", "outcome")
    return Health(
        last_success=last_success,
        last_failure=None if last_failure is None else {k: last_failure.get(k) for k in fields},
        failure_streak=streak,
        streak_is_whole_log=bool(records) and streak == len(records) >= kept,
        attempts=len(records),
    )


def masked_url(url: str) -> str:
    """``url`` with its password and every query value replaced by ``***``: a callback URL may
    carry a receiver's credentials or token, and the console never shows a secret."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, sep, _password = userinfo.partition(":")
            netloc = f"{user}:{MASK}@{hostport}" if sep else f"{user}@{hostport}"
        query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
        if parts.query and not query:
            query = MASK
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return MASK
