"""The :class:`~macnss_auth.ClientContext` of a request, so throttles count per client.

The client address is the TCP peer's, unless the peer is one of the
configured trusted proxies: then ``X-Forwarded-For`` is read from the right,
skipping trusted proxies, and the first address that is not one is the
client. Anyone can send the header, so it is ignored from any other peer
(else a guesser would pick a fresh "address" for each attempt and dodge the
per-client counts, or aim them at a victim's address).

The address is also the context's ``client_id``, the key of the throttles'
per-(subject, client) counts (an IPv6 address by its /64, which one subscriber
holds whole): a header the client picks freely (an app installation id) would
let a guesser start a fresh count at will.
``User-Agent`` (cut to 200 characters) goes to the audit log.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.requests import HTTPConnection

from macnss_auth.authenticator import ClientContext
from macnss_auth.errors import ConfigurationError

__all__ = ["TrustedProxies", "client_context"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAX_USER_AGENT = 200
_IPV6_CLIENT_PREFIX = 64


class TrustedProxies:
    """Addresses (or networks) of reverse proxies whose ``X-Forwarded-For`` is believed.

    Args:
        networks: e.g. ``["127.0.0.1", "::1"]`` (a proxy on this host); empty: trust no proxy.

    Raises:
        ConfigurationError: a value that is not an address or network.
    """

    def __init__(self, networks: Iterable[str] = ()) -> None:
        parsed: list[_Network] = []
        for text in networks:
            try:
                parsed.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:  # noqa: PERF203 (configuration is read once)
                raise ConfigurationError(f"not an address or network: {text!r}") from None
        self._networks = tuple(parsed)

    def __repr__(self) -> str:
        return f"TrustedProxies({[str(n) for n in self._networks]!r})"

    def trusts(self, address: str | None) -> bool:
        """Whether ``address`` is a trusted proxy."""
        if address is None or not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def client_address(self, peer: str | None, forwarded_for: list[str]) -> str | None:
        """The client's address given the TCP peer and every ``X-Forwarded-For`` header."""
        if not self.trusts(peer):
            return peer
        hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
        address = peer
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                # A garbled hop ends the chain: what lies left of it is not vouched for.
                return address
            address = hop
            if not self.trusts(hop):
                return hop
        return address


def client_context(connection: HTTPConnection, proxies: TrustedProxies) -> ClientContext:
    """The request's client, as far as it can be believed."""
    peer = connection.client.host if connection.client is not None else None
    forwarded = connection.headers.getlist("x-forwarded-for")
    agent = connection.headers.get("user-agent", "")[:_MAX_USER_AGENT]
    user_agent = agent if agent.isascii() and agent.isprintable() and agent else None
    ip = proxies.client_address(peer, forwarded)
    return ClientContext(client_id=_client_key(ip), ip=ip, user_agent=user_agent)


def _client_key(address: str | None) -> str | None:
    """The throttles' key for ``address``: an IPv6 client is its /64.

    One IPv6 subscriber gets a whole /64 (RFC 6177) and picks addresses in it
    freely (RFC 8981): keyed by the full address, every attempt would start
    a fresh per-client count. An IPv4-mapped address is its IPv4 address.
    """
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, _IPV6_CLIENT_PREFIX), strict=False))
    return str(ip)
