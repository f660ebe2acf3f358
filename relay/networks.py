"""IP networks named in settings (``RELAY_EGRESS_ALLOW``, ``RELAY_TRUSTED_PROXIES``). Pure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Self

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: Any) -> tuple[IPNetwork, ...]:
    """``"10.0.0.0/8, ::1/128"`` (or a list) -> the networks; a malformed item is a ValueError
    naming it. A bare address is its own /32 (/128)."""
    items = value if isinstance(value, list | tuple) else str(value or "").split(",")
    networks = []
    for item in items:
        text = str(item).strip()
        if text:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise ValueError(f"{text!r} is not a CIDR such as 10.0.0.0/8") from None
    return tuple(networks)


def ip_of(address: str | None) -> IPAddress | None:
    """The address as an IP (an IPv4-mapped IPv6 one as IPv4; a zone dropped); None if it is none."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@dataclass(frozen=True)
class Networks:
    """A setting that lists networks (``RELAY_EGRESS_ALLOW``, ``RELAY_TRUSTED_PROXIES``)."""

    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, value: Any) -> Self:
        return cls(parse_networks(value))

    def __str__(self) -> str:
        return ",".join(str(n) for n in self.networks)

    def __contains__(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)
