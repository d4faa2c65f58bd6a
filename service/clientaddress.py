"""Who is asking: the TCP peer, or what a trusted reverse proxy says the client was.

`X-Forwarded-For` is written by whoever sends the request, so it is believed only when the
peer is a proxy the operator named (PSA_LEDGER_TRUSTED_PROXIES). Each proxy appends the
address it saw, so the list is read from the right, skipping proxies we trust: the first
address we do not trust is the client. Anything to its left was written by that client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["ClientAddress", "Network", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Far longer than any address; keeps what a proxy passes on from sizing our memory or logs.
_LONGEST = 64


class ClientAddress:
    """Finds a request's client address given the proxies the operator trusts."""

    def __init__(self, trusted: Iterable[Network] = ()) -> None:
        self.trusted = tuple(trusted)

    def of(self, peer: str | None, forwarded_for: Iterable[str]) -> str:
        """`peer` is the TCP peer; `forwarded_for` every X-Forwarded-For header it sent."""
        peer = peer or "unknown"
        # Trusting no proxy is the usual case: no need to parse the peer on every request.
        if not self.trusted or not self._trusts(peer):
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        hops = [hop for hop in hops if hop]
        for hop in reversed(hops):
            if not self._trusts(hop):
                return _host(hop)[:_LONGEST]
        # Every hop is a proxy we trust: the one furthest away is the client.
        return _host(hops[0])[:_LONGEST] if hops else peer

    def _trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(_host(address))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket shows 127.0.0.1 as ::ffff:127.0.0.1
        return any(ip in network for network in self.trusted)


def parse_networks(text: str) -> tuple[Network, ...]:
    """`10.0.0.5, 192.168.0.0/24, ::1` as networks; ValueError names the entry that is not."""
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(networks)


def _host(hop: str) -> str:
    """Some proxies add the port: `203.0.113.5:4711`, `[2001:db8::1]:4711`."""
    if hop.startswith("[") and "]" in hop:
        return hop[1 : hop.index("]")]
    if hop.count(":") == 1:
        return hop.partition(":")[0]
    return hop
