"""Which client a request comes from, for the failure limits and the logs. Pure.

Behind an ingress every connection comes from the ingress. ``RELAY_TRUSTED_PROXIES`` names the
proxies whose ``X-Forwarded-For`` is believed: when the peer is one of them, the client is the
rightmost address of that header that is not itself a trusted proxy (the leftmost one when all
are). A header that does not parse, or any header from a peer not trusted, is ignored: the client
is the peer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from relay.networks import Networks, ip_of

FORWARDED_FOR = "X-Forwarded-For"


@dataclass(frozen=True)
class TrustedProxies(Networks):
    """``RELAY_TRUSTED_PROXIES``: the networks of the proxies in front of the relay."""

    def __bool__(self) -> bool:
        return bool(self.networks)

    def everyone(self) -> bool:
        """True when a network covers every address of its family (``0.0.0.0/0``, ``::/0``)."""
        return any(net.prefixlen == 0 for net in self.networks)

    def client(self, peer: str | None, forwarded_for: Iterable[str]) -> str | None:
        """The client's address: the peer's, or from ``X-Forwarded-For`` (every such header's
        values, in order) when the peer is trusted."""
        if not self.networks:
            return peer
        peer_ip = ip_of(peer)
        if peer_ip is None or peer_ip not in self:
            return peer
        hops = [item.strip() for header in forwarded_for for item in header.split(",")]
        if not hops:
            return peer
        chain = [ip_of(hop) for hop in hops]
        if any(ip is None for ip in chain):
            return peer
        found = [ip for ip in chain if ip is not None]
        for ip in reversed(found):
            if ip not in self:
                return str(ip)
        return str(found[0])
