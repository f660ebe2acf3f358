"""relay.console.guard: the token and the same-origin check a console POST must pass. Pure."""

from __future__ import annotations

import pytest

from relay.console.guard import TOKEN_LIFETIME, make_token, same_origin, token_valid

PAIR = (b"admin", b"secret-pw")
NOW = 1_800_000_000
HERE = "http://relay.local:8081"


def test_a_fresh_token_is_valid() -> None:
    """A token made for a pair is accepted for that pair."""
    assert token_valid(make_token(PAIR, NOW), PAIR, NOW + 5)


@pytest.mark.parametrize(
    ("token", "pair", "now"),
    [
        (make_token(PAIR, NOW), (b"admin", b"other-pw"), NOW),  # another password
        (make_token(PAIR, NOW), (b"other", b"secret-pw"), NOW),  # another user
        (make_token(PAIR, NOW), PAIR, NOW + TOKEN_LIFETIME + 1),  # expired
        (make_token(PAIR, NOW + 3600), PAIR, NOW),  # issued in the future
        (make_token(PAIR, NOW), None, NOW),  # no credentials on the request
        ("", PAIR, NOW),
        (None, PAIR, NOW),
        ("garbage", PAIR, NOW),
        (f"{NOW}.{'0' * 64}", PAIR, NOW),  # a forged mac
        (f"x{NOW}.abc", PAIR, NOW),
    ],
)
def test_a_token_not_made_for_the_pair_now_is_refused(
    token: str | None, pair: tuple[bytes, bytes] | None, now: int
) -> None:
    """Another pair, an expired or future token, a forged or malformed one: refused."""
    assert not token_valid(token, pair, now)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://relay.local:8081"},
        {"Origin": "https://relay.local:8081", "Sec-Fetch-Site": "same-origin"},
        {"Referer": "http://relay.local:8081/console/dead-letters?x=1"},
        {"Origin": "http://RELAY.local:8081"},
    ],
)
def test_a_request_from_the_console_itself_passes(headers: dict[str, str]) -> None:
    """An Origin or Referer naming this host (scheme aside), and a same-origin fetch, pass."""
    assert same_origin(headers, "relay.local:8081") is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Origin": "http://evil.example"}, "Origin is another site"),
        ({"Origin": "null"}, "Origin is another site"),
        ({"Origin": HERE, "Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site is cross-site"),
        ({"Origin": HERE, "Sec-Fetch-Site": "same-site"}, "Sec-Fetch-Site is same-site"),
        ({"Referer": "http://evil.example/relay.local:8081"}, "Referer is another site"),
        ({"Origin": "http://relay.local:9999"}, "Origin is another site"),
        ({}, "neither Origin nor Referer is sent"),
    ],
)
def test_a_request_from_elsewhere_is_refused(headers: dict[str, str], reason: str) -> None:
    """Another site, another port, an opaque origin, a cross-site fetch, or no evidence: refused."""
    assert same_origin(headers, "relay.local:8081") == reason


def test_a_request_without_host_is_refused() -> None:
    """Without a Host there is nothing to compare with."""
    assert same_origin({"Origin": "http://relay.local"}, None) == "the request names no Host"
