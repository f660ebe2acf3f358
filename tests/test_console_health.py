"""relay.console.health: a webhook's health from its attempt log, and callback URLs masked. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from relay.console.health import health_of, masked_url


def _log(*outcomes: str) -> list[dict[str, Any]]:
    """Records newest first, at 100, 99, ..."""
    return [
        {"at": 100 - n, "outcome": o, "status": 200 if o == "delivered" else 503, "error": None}
        for n, o in enumerate(outcomes)
    ]


@pytest.mark.parametrize(
    ("outcomes", "success", "failure_at", "streak", "whole", "state"),
    [
        ((), None, None, 0, False, "unknown"),
        (("delivered",), 100, None, 0, False, "healthy"),
        (("delivered", "retry"), 100, 99, 0, False, "healthy"),
        (("retry", "dead", "delivered", "retry"), 98, 100, 2, False, "failing"),
        (("retry", "retry"), None, 100, 2, True, "failing"),  # the whole (full) log
        (("refused",), None, 100, 1, False, "failing"),  # the log is not full: nothing trimmed
    ],
)
def test_health_from_the_log(
    outcomes: tuple[str, ...],
    success: int | None,
    failure_at: int | None,
    streak: int,
    whole: bool,
    state: str,
) -> None:
    """Last success, last failure, the streak since the success (at least, when a full log
    failed throughout), and the verdict; the log here holds 2 at most."""
    health = health_of(_log(*outcomes), kept=2)
    assert health.last_success == success
    assert (health.last_failure or {}).get("at") == failure_at
    assert health.failure_streak == streak
    assert health.streak_is_whole_log == whole
    assert health.state == state


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example/in", "https://hooks.example/in"),
        ("https://bob:pw@hooks.example/in", "https://bob:***@hooks.example/in"),
        ("https://bob@hooks.example/in", "https://bob@hooks.example/in"),
        ("https://hooks.example/in?token=abc&x=", "https://hooks.example/in?token=***&x=***"),
        ("https://hooks.example/in?abc", "https://hooks.example/in?abc=***"),
        ("https://hooks.example/in?&", "https://hooks.example/in?***"),
        ("https://hooks.example/in#frag-secret", "https://hooks.example/in"),
        ("http://[::1", "***"),
    ],
)
def test_callback_urls_are_masked(url: str, shown: str) -> None:
    """Passwords and query values never show; the host and path do."""
    assert masked_url(url) == shown
