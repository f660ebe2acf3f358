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


SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")
"""Deprecated site-local IPv6: private, though the standard library takes it for global."""

# IPv6 forms that carry an IPv4 address, by which they are judged (the IPv4 address is where the
# packets end up: through a NAT64 gateway, a 6to4 or Teredo relay, or the host's own stack).
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
NAT64_LOCAL_PREFIXES = (96, 64, 56, 48)
"""The RFC 6052 prefix lengths a network may use inside 64:ff9b:1::/48. The address does not say
which, so every reading must pass, but for readings in 0.0.0.0/8, which no translator forwards
to (the zeros of a longer prefix read as a shorter one's)."""
THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")


def _rfc6052(value: int, prefix: int) -> ipaddress.IPv4Address:
    """The IPv4 address an RFC 6052 address with a ``prefix``-bit prefix embeds (bits 64-71, the
    "u" octet, are skipped)."""
    if prefix == 96:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    before = 64 - prefix  # bits of the IPv4 address ahead of the u octet
    high = (value >> 64) & ((1 << before) - 1) if before else 0
    low_bits = 32 - before
    low = (value >> (56 - low_bits)) & ((1 << low_bits) - 1)
    return ipaddress.IPv4Address((high << low_bits) | low)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address embeds (IPv4-mapped, IPv4-translated, NAT64, 6to4,
    Teredo server and client, IPv4-compatible), or () for any other address. Pure."""
    value = int(ip)
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip in IPV4_TRANSLATED or ip in NAT64_WELL_KNOWN:
        return (ipaddress.IPv4Address(value & 0xFFFFFFFF),)
    if ip in NAT64_LOCAL:
        readings = dict.fromkeys(_rfc6052(value, n) for n in NAT64_LOCAL_PREFIXES)
        return tuple(r for r in readings if r not in THIS_NETWORK) or (_rfc6052(value, 96),)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo
    if ip in IPV4_COMPATIBLE and value > 1:  # :: and ::1 are themselves
        return (ipaddress.IPv4Address(value),)
    return ()


@dataclass(frozen=True)
class EgressAllow(Networks):
    """``RELAY_EGRESS_ALLOW``: the non-public networks deliveries may reach."""


def refusal(address: str | IPAddress, allow: EgressAllow) -> str | None:
    """Why a connection to ``address`` is refused, or None when it is allowed."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return f"not an IP address: {address!r}"
    inner = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else ()
    if inner:  # judged by the IPv4 address(es) it carries, and only by them
        for v4 in inner:
            why = refusal(v4, allow)
            if why is not None:
                return f"{ip} embeds {why}"
        return None
    for net in ALWAYS_REFUSED:
        if ip.version == net.version and ip in net:
            return f"{ip} is link-local or a cloud metadata address"
    if ip.is_global and not ip.is_multicast and ip not in SITE_LOCAL:
        return None
    for net in allow.networks:
        if ip.version == net.version and ip in net:
            return None
    return f"{ip} is not a public address and not in RELAY_EGRESS_ALLOW"
