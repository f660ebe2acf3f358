"""Signature failures are rate-limited per client address: the pure limiter, then the listener."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
import structlog

from relay.ingest.limiter import FailureLimiter, client_key, retry_after_header
from relay.settings import Settings
from relay.signing import CALLFIRE_HEADER
from tests.callbacks import callback_body, signed
from tests.hostile import exchange, keys_under, request_head, served


def test_limit_failures_are_allowed_then_the_client_waits() -> None:
    """Failures up to the limit leave the client free; the one reaching it blocks the client."""
    limiter = FailureLimiter(limit=3, window=60)
    assert [limiter.failed("a", now=100.0 + n) for n in range(3)] == [False, False, True]
    assert limiter.retry_after("a", now=103.0) == pytest.approx(57.0)


def test_block_ends_with_the_window() -> None:
    """A blocked client may try again once its window (opened by its first failure) has passed."""
    limiter = FailureLimiter(limit=2, window=10)
    limiter.failed("a", now=0.0)
    limiter.failed("a", now=1.0)
    assert limiter.retry_after("a", now=9.9) == pytest.approx(0.1)
    assert limiter.retry_after("a", now=10.0) is None
    assert limiter.failed("a", now=10.0) is False  # a fresh window


def test_failures_are_counted_per_client() -> None:
    """One client's failures do not block another."""
    limiter = FailureLimiter(limit=1, window=60)
    limiter.failed("a", now=0.0)
    assert limiter.retry_after("a", now=1.0) is not None
    assert limiter.retry_after("b", now=1.0) is None


def test_memory_is_bounded_by_max_clients() -> None:
    """100,000 distinct failing addresses never hold more than max_clients windows."""
    limiter = FailureLimiter(limit=5, window=60, max_clients=1000)
    for n in range(100_000):
        limiter.failed(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", now=n / 1000)
        assert len(limiter) <= 1000


def test_expired_windows_are_dropped_as_new_ones_open() -> None:
    """Windows that ended are forgotten when a new client fails, not kept until the table fills."""
    limiter = FailureLimiter(limit=5, window=10)
    for n in range(50):
        limiter.failed(f"c{n}", now=0.0)
    limiter.failed("late", now=11.0)
    assert len(limiter) == 1


def test_nothing_is_stored_for_checks_alone() -> None:
    """Checking a client that never failed stores nothing (the hot path only reads)."""
    limiter = FailureLimiter(limit=1, window=60)
    for n in range(100):
        assert limiter.retry_after(f"c{n}", now=0.0) is None
    assert len(limiter) == 0


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("fe80::1%eth0", "fe80::/64"),
        (None, "unknown"),
        ("not:an:address", "not:an:address"),
    ],
)
def test_client_key(remote: str | None, key: str) -> None:
    """IPv4 counts per address, IPv6 per /64, IPv4-mapped IPv6 as its IPv4 address."""
    assert client_key(remote) == key


@pytest.mark.parametrize(("seconds", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (59.5, "60")])
def test_retry_after_header_is_whole_seconds_never_zero(seconds: float, header: str) -> None:
    """Retry-After rounds up, so a client that obeys it is not refused again."""
    assert retry_after_header(seconds) == header


@pytest.mark.parametrize("args", [(0, 60.0), (1, 0.0), (1, 60.0, 0)])
def test_limiter_refuses_nonsense_bounds(args: tuple[Any, ...]) -> None:
    """A limit, window or table size that cannot work is a ValueError, not a silent no-limit."""
    with pytest.raises(ValueError):
        FailureLimiter(*args)


def bad_signature_request() -> bytes:
    body = callback_body()
    return request_head(headers={CALLFIRE_HEADER: "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}, length=len(body)) + body


def good_request() -> bytes:
    body = callback_body()
    return request_head(headers=signed(body), length=len(body)) + body


async def test_listener_answers_429_after_too_many_bad_signatures(
    make_settings: Callable[..., Settings], redis: Any, prefix: str
) -> None:
    """After auth_failure_limit bad signatures, the address's next bad one gets 429 with
    Retry-After and CallFire's error body, and nothing is written."""
    settings = make_settings(auth_failure_limit=3, auth_failure_window=30)
    async with served(settings, redis) as server:
        first = [await exchange(server.port, bad_signature_request()) for _ in range(3)]
        blocked = await exchange(server.port, bad_signature_request())
    assert [r.status for r in first] == [401, 401, 401]
    assert blocked.status == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 30
    assert orjson.loads(blocked.body)["httpStatusCode"] == 429
    assert await keys_under(redis, prefix) == []


async def test_a_valid_signature_is_accepted_from_a_held_back_address(
    make_settings: Callable[..., Settings], redis: Any
) -> None:
    """The limit never refuses a valid signature: past it, a signed callback is still 200."""
    settings = make_settings(auth_failure_limit=3, auth_failure_window=30)
    async with served(settings, redis) as server:
        for _ in range(5):
            await exchange(server.port, bad_signature_request())
        good = await exchange(server.port, good_request())
    assert good.status == 200


async def test_other_addresses_are_still_served(make_settings: Callable[..., Settings], redis: Any) -> None:
    """While 127.0.0.2 is blocked, a bad signature from 127.0.0.1 is still only 401."""
    settings = make_settings(auth_failure_limit=2)
    async with served(settings, redis) as server:
        for _ in range(3):
            await exchange(server.port, bad_signature_request(), local_host="127.0.0.2")
        blocked = await exchange(server.port, bad_signature_request(), local_host="127.0.0.2")
        other = await exchange(server.port, bad_signature_request())
    assert blocked.status == 429
    assert other.status == 401


async def test_limit_zero_turns_the_limit_off(make_settings: Callable[..., Settings], redis: Any) -> None:
    """auth_failure_limit=0: fifty bad signatures are fifty 401s, and a good one is accepted."""
    settings = make_settings(auth_failure_limit=0)
    async with served(settings, redis) as server:
        statuses = {(await exchange(server.port, bad_signature_request())).status for _ in range(50)}
        good = await exchange(server.port, good_request())
    assert statuses == {401}
    assert good.status == 200


async def test_blocked_requests_are_not_logged_one_by_one(
    make_settings: Callable[..., Settings], redis: Any
) -> None:
    """A blocked client's flood adds no log line per request: one warning when it is blocked."""
    settings = make_settings(auth_failure_limit=2)
    async with served(settings, redis) as server:
        with structlog.testing.capture_logs() as captured:
            for _ in range(2 + 100):
                await exchange(server.port, bad_signature_request())
    messages = [entry["event"] for entry in captured]
    assert messages.count("callback refused") == 2
    assert messages.count("client rate limited after failed signatures") == 1
    assert len(messages) == 3
