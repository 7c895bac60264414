"""Whose address a request counts under, for the per-address limits.

The peer's, unless the peer is one of the operator's trusted proxies (HUB_TRUSTED_PROXIES): then the
address that proxy says it forwarded for. Believing X-Forwarded-For from anyone would let a caller
pick a new address for every request and so escape every per-address limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_proxies(text: str) -> tuple[Network, ...]:
    """Comma-separated IP addresses or CIDR networks; ValueError names an entry that is neither."""
    networks = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(networks)


def request_address(request: HTTPConnection, proxies: Sequence[Network]) -> str:
    """The address an HTTP request or WebSocket counts under."""
    peer = request.client.host if request.client else None
    return caller_address(peer, request.headers.getlist("x-forwarded-for"), proxies)


def caller_address(peer: str | None, forwarded_for: Sequence[str], proxies: Sequence[Network]) -> str:
    """The address to count a request under.

    ``forwarded_for`` are the request's X-Forwarded-For headers. Each proxy appends the address it
    received from, so the list is read from the right, skipping trusted proxies: the first other
    address is the caller. Whatever is further left was written by that caller and is not believed.
    """
    current = _address(peer)
    if current is None:
        return peer or "unknown"
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    while hops and _trusted(current, proxies):
        hop = _address(hops.pop())
        if hop is None:  # garbage: keep the last address a trusted proxy vouched for
            break
        current = hop
    if current.version == 6:
        # One IPv6 subscriber holds a /64 (or more): counting single addresses would not limit anyone.
        return str(ipaddress.ip_network(f"{current}/64", strict=False))
    return str(current)


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


def _address(text: str | None) -> Address | None:
    try:
        return ipaddress.ip_address(text or "")
    except ValueError:
        return None
