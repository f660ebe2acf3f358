"""Which addresses a delivery may connect to. Pure: decided on the address actually used."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from relay.networks import IPAddress, IPNetwork, Networks

# Never reachable, whatever RELAY_EGRESS_ALLOW says: link-local (where cloud metadata lives) and
# the metadata addresses clouds put elsewhere.
ALWAYS_REFUSED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # IPv4 link-local, AWS/GCP/Azure metadata at 169.254.169.254
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
    )
)


@dataclass(frozen=True)
class EgressAllow(Networks):
    """``RELAY_EGRESS_ALLOW``: the non-public networks deliveries may reach."""


def refusal(address: str | IPAddress, allow: EgressAllow) -> str | None:
    """Why a connection to ``address`` is refused, or None when it is allowed."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return f"not an IP address: {address!r}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for net in ALWAYS_REFUSED:
        if ip.version == net.version and ip in net:
            return f"{ip} is link-local or a cloud metadata address"
    if ip.is_global and not ip.is_multicast:
        return None
    for net in allow.networks:
        if ip.version == net.version and ip in net:
            return None
    return f"{ip} is not a public address and not in RELAY_EGRESS_ALLOW"
