"""Which client a request comes from (relay/ingest/clients.py): X-Forwarded-For believed only
from a trusted proxy, read from the right. Pure, as a table."""

from __future__ import annotations

import pytest

from relay.ingest.clients import TrustedProxies

PROXIES = TrustedProxies.parse("10.0.0.0/8, fd00::/8")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.1.2.3", ["203.0.113.7"], "203.0.113.7"),
        ("10.1.2.3", ["198.51.100.1, 203.0.113.7"], "203.0.113.7"),
        ("10.1.2.3", ["203.0.113.7, 10.9.9.9"], "203.0.113.7"),
        ("10.1.2.3", ["198.51.100.1", "203.0.113.7, 10.9.9.9"], "203.0.113.7"),
        ("10.1.2.3", ["10.4.4.4, 10.9.9.9"], "10.4.4.4"),
        ("10.1.2.3", [], "10.1.2.3"),
        ("10.1.2.3", ["unknown"], "10.1.2.3"),
        ("10.1.2.3", ["203.0.113.7, "], "10.1.2.3"),
        ("10.1.2.3", ["203.0.113.7:443"], "10.1.2.3"),
        ("10.1.2.3", ["2001:db8::1"], "2001:db8::1"),
        ("fd00::5", ["203.0.113.7"], "203.0.113.7"),
        ("::ffff:10.1.2.3", ["203.0.113.7"], "203.0.113.7"),
        ("192.0.2.50", ["203.0.113.7"], "192.0.2.50"),
        (None, ["203.0.113.7"], None),
    ],
    ids=[
        "one hop",
        "rightmost untrusted",
        "trusted hops skipped",
        "several headers read as one list",
        "all trusted: the leftmost",
        "no header: the peer",
        "garbage: the peer",
        "an empty item: the peer",
        "a port: the peer",
        "IPv6 client",
        "IPv6 proxy",
        "IPv4-mapped proxy",
        "untrusted peer: header ignored",
        "no peer",
    ],
)
def test_the_client_address(peer: str | None, forwarded: list[str], client: str | None) -> None:
    """The client is the rightmost forwarded address not itself trusted, only from a trusted peer."""
    assert PROXIES.client(peer, forwarded) == client


def test_without_trusted_proxies_the_header_is_never_read() -> None:
    """RELAY_TRUSTED_PROXIES unset: the client is always the peer."""
    assert TrustedProxies().client("10.1.2.3", ["203.0.113.7"]) == "10.1.2.3"


@pytest.mark.parametrize(("text", "everyone"), [("0.0.0.0/0", True), ("::/0", True), ("10.0.0.0/8", False)])
def test_trusting_everyone_is_recognised(text: str, everyone: bool) -> None:
    """``everyone`` is what `relay check` warns about."""
    assert TrustedProxies.parse(text).everyone() is everyone


@pytest.mark.parametrize("text", ["10.0.0.0/33", "ingress", "10.0.0.0/8,,nope"])
def test_a_malformed_cidr_is_refused(text: str) -> None:
    """A malformed CIDR is a ValueError naming it (the settings turn it into exit 2)."""
    with pytest.raises(ValueError, match="is not a CIDR"):
        TrustedProxies.parse(text)
