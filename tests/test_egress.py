"""The egress policy, enforced on the address actually connected to: names and IP literals alike."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from relay.delivery.client import EgressRefused, EgressResolver, Sender, literal_refusal
from relay.delivery.message import OutboundRequest
from relay.egress import EgressAllow, embedded_ipv4, refusal
from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.delivery_harness import open_harness
from tests.sink import Sink

LOOPBACK = EgressAllow.parse("127.0.0.0/8")
NOTHING = EgressAllow()
EVERYTHING = EgressAllow.parse("0.0.0.0/0,::/0")


class FixedResolver(AbstractResolver):
    """Answers every name with the given addresses, as a DNS server under someone's control may."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("host", "allow", "refused"),
    [
        ("127.0.0.1", NOTHING, True),
        ("127.0.0.1", LOOPBACK, False),
        ("::ffff:127.0.0.1", NOTHING, True),
        ("::ffff:127.0.0.1", LOOPBACK, False),
        ("[::1]", NOTHING, True),
        ("10.1.2.3", NOTHING, True),
        ("169.254.169.254", EVERYTHING, True),
        ("::ffff:169.254.169.254", EVERYTHING, True),
        ("2130706433", EVERYTHING, True),
        ("127.1", EVERYTHING, True),
        ("93.184.216.34", NOTHING, False),
        ("example.com", NOTHING, False),
    ],
)
def test_literal_hosts(host: str, allow: EgressAllow, refused: bool) -> None:
    """IP-literal hosts are judged before connecting; decimal and short forms never pass; names
    are left to the resolver."""
    assert (literal_refusal(host, allow) is not None) is refused


async def test_resolver_drops_refused_addresses() -> None:
    """A name resolving to a public and a private address connects only to the public one."""
    resolver = EgressResolver(NOTHING, FixedResolver("10.0.0.5", "93.184.216.34"))
    assert [r["host"] for r in await resolver.resolve("mixed.example", 443)] == ["93.184.216.34"]


async def test_resolver_refuses_a_name_of_metadata_addresses() -> None:
    """A name that resolves only to the metadata address is refused, whatever is allowed."""
    resolver = EgressResolver(EVERYTHING, FixedResolver("169.254.169.254"))
    with pytest.raises(EgressRefused, match="metadata"):
        await resolver.resolve("innocent.example", 80)


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = await Sink().start()
    yield server
    await server.close()


async def post(allow: EgressAllow, url: str, resolver: AbstractResolver | None = None) -> object:
    sender = Sender(allow=allow, timeout=2.0, max_connections=4, resolver=resolver)
    await sender.start()
    try:
        return await sender.send(
            OutboundRequest(
                url=url, body=b"{}", headers={"Content-Type": "application/json"}, verify_ssl=True
            )
        )
    finally:
        await sender.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
async def test_loopback_not_allowed_is_never_connected(sink: Sink, host: str) -> None:
    """Without RELAY_EGRESS_ALLOW, loopback is refused by literal, by name and as mapped IPv6."""
    result = await post(NOTHING, f"http://{host}:{sink.port}/x")
    assert getattr(result, "refused", False)
    assert sink.received == []


async def test_name_resolving_to_loopback_is_refused(sink: Sink) -> None:
    """A public-looking name whose DNS answer is loopback never reaches it."""
    result = await post(NOTHING, f"http://rebind.example:{sink.port}/x", FixedResolver("127.0.0.1"))
    assert getattr(result, "refused", False)
    assert sink.received == []


async def test_allowed_loopback_is_reached_by_name(sink: Sink) -> None:
    """With 127.0.0.0/8 allowed, `localhost` connects (its ::1 answer dropped) and delivers."""
    result = await post(LOOPBACK, f"http://localhost:{sink.port}/x")
    assert getattr(result, "status", None) == 200
    assert len(sink.received) == 1


async def test_refused_delivery_is_dead_lettered_with_the_reason(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """A delivery the policy refuses is dead-lettered at once, kind `refused`, the reason given."""
    async with open_harness(make_settings, redis, egress_allow="") as h:
        await h.webhook()
        await h.start()
        await h.publish()
        (letter,) = await h.dead_letters(1)
        assert letter.kind == "refused"
        assert "127.0.0.1" in letter.reason and "RELAY_EGRESS_ALLOW" in letter.reason
        assert h.sink.received == []


# IPv6 forms that embed an IPv4 address, each judged by that address: (form, refused, allowed).
# "refused" embeds a metadata or a private address; "allowed" embeds 93.184.216.34 (public).
EMBEDDED = {
    "NAT64 well-known": ("64:ff9b::a9fe:a9fe", "64:ff9b::5db8:d822"),
    "NAT64 well-known, private": ("64:ff9b::a00:1", "64:ff9b::5db8:d822"),
    "NAT64 local-use /96": ("64:ff9b:1::a9fe:a9fe", "64:ff9b:1::5db8:d822"),
    "NAT64 local-use /48": ("64:ff9b:1:a00:0:100::", "64:ff9b:1:5db8:d8:2200:5db8:d822"),
    "6to4": ("2002:a9fe:a9fe::1", "2002:5db8:d822::1"),
    "6to4, private": ("2002:a00:1::1", "2002:5db8:d822::1"),
    "Teredo, client": ("2001:0:5db8:d822:0:0:f5ff:fffe", "2001:0:5db8:d822:0:0:a247:27dd"),
    "Teredo, server": ("2001:0:a00:1:0:0:a247:27dd", "2001:0:5db8:d822:0:0:a247:27dd"),
    "IPv4-compatible": ("::a9fe:a9fe", "::5db8:d822"),
    "IPv4-compatible, private": ("::a00:1", "::5db8:d822"),
    "IPv4-mapped": ("::ffff:a00:1", "::ffff:5db8:d822"),
    "IPv4-translated": ("::ffff:0:a00:1", "::ffff:0:5db8:d822"),
}


def test_embedded_forms_name_their_ipv4() -> None:
    """Each form gives back the IPv4 address it carries (Teredo: its server and its client)."""
    got = {
        form: [str(a) for a in embedded_ipv4(ipaddress.IPv6Address(r))] for form, (r, _) in EMBEDDED.items()
    }
    assert got["NAT64 well-known"] == ["169.254.169.254"]
    assert got["NAT64 local-use /48"] == ["10.0.0.1"]  # its /96 reading, 0.0.0.0, is no address
    assert got["6to4"] == ["169.254.169.254"]
    assert got["Teredo, client"] == ["93.184.216.34", "10.0.0.1"]
    assert got["IPv4-compatible"] == ["169.254.169.254"]
    assert got["IPv4-translated"] == ["10.0.0.1"]


def test_loopback_and_unspecified_are_not_taken_for_ipv4_compatible() -> None:
    """``::1`` and ``::`` stay themselves (``::1`` is allowed by an allow list naming it)."""
    assert embedded_ipv4(ipaddress.IPv6Address("::1")) == ()
    assert embedded_ipv4(ipaddress.IPv6Address("::")) == ()
    assert refusal("::1", EgressAllow.parse("::1/128")) is None


@pytest.mark.parametrize("form", list(EMBEDDED))
@pytest.mark.parametrize("how", ["literal", "dns"])
async def test_embedded_ipv4_is_judged_by_the_ipv4_address(form: str, how: str) -> None:
    """An address embedding a metadata or private IPv4 address is refused, as a URL's literal
    host and as a DNS answer, whatever is allowed for IPv6; one embedding a public one passes."""
    refused, allowed = EMBEDDED[form]
    v6_only = EgressAllow.parse("::/0")
    for address, is_refused in ((refused, True), (allowed, False)):
        if how == "literal":
            assert (literal_refusal(f"[{address}]", v6_only) is not None) is is_refused, address
        elif is_refused:
            with pytest.raises(EgressRefused):
                await EgressResolver(v6_only, FixedResolver(address)).resolve("embedded.example", 80)
        else:
            found = await EgressResolver(v6_only, FixedResolver(address)).resolve("embedded.example", 80)
            assert [r["host"] for r in found] == [address]


@pytest.mark.parametrize("how", ["literal", "dns"])
async def test_site_local_is_refused(how: str) -> None:
    """``fec0::/10`` (deprecated site-local) is not public: refused unless allowed."""
    if how == "literal":
        assert literal_refusal("[fec0::1]", NOTHING) is not None
        assert literal_refusal("[fec0::1]", EgressAllow.parse("fec0::/10")) is None
    else:
        with pytest.raises(EgressRefused, match="not a public address"):
            await EgressResolver(NOTHING, FixedResolver("fec0::1")).resolve("site.example", 80)
