"""The egress policy, enforced on the address actually connected to: names and IP literals alike."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from relay.delivery.client import EgressRefused, EgressResolver, Sender, literal_refusal
from relay.delivery.message import OutboundRequest
from relay.egress import EgressAllow
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
