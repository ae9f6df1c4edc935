"""Where a subscription may point: http(s) hosts on the public internet only.

A URL is resolved once and every address it resolves to is checked: loopback, private,
shared (CGNAT), link-local (cloud metadata at 169.254.169.254 included), multicast,
reserved and unspecified addresses are refused, also when wrapped in IPv6 (mapped, 6to4,
Teredo). The sender then connects to the very address it checked (`sender.PinnedAdapter`),
so a DNS answer that changes between the check and the connection (rebinding) cannot
redirect it. `OUTBOUND_WEBHOOKS_ALLOW_PRIVATE=true` lifts the address check (tests, or a
receiver on the same private network).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from autocheckin import errors
from autocheckin.attendance.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SCHEMES = {"http": 80, "https": 443}


class RefusedDestination(errors.Invalid):
    """A URL we will not send to: not http(s), credentials in it, or a private address."""

    code = "refused_destination"


@dataclass(frozen=True)
class Destination:
    """A URL taken apart, with the checked address to connect to."""

    scheme: str
    host: str
    port: int
    address: str


def parse_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL with a host and no credentials; Invalid else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Invalid(f"Invalid url: {error}", code="invalid_url") from None
    if parts.scheme not in SCHEMES:
        raise Invalid("Invalid url: only http and https are allowed", code="invalid_url")
    if not parts.hostname:
        raise Invalid("Invalid url: it has no host", code="invalid_url")
    if parts.username is not None or parts.password is not None:
        raise Invalid(
            "Invalid url: credentials in the URL are not allowed; send them in headers",
            code="invalid_url",
        )
    return parts.scheme, parts.hostname, port or SCHEMES[parts.scheme]


def _unwrapped(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo), or itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
    return address


def refusal(address: IPAddress) -> str | None:
    """Why an address may not be a webhook's destination, or None when it may."""
    address = _unwrapped(address)
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata lives there)"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address.is_private or not address.is_global:
        return "private or reserved"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order; Invalid when none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise Invalid(
            f"Invalid url: host {host} does not resolve ({error})", code="unresolvable_host"
        ) from None
    addresses = []
    for _family, _type, _proto, _name, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    if not addresses:
        raise Invalid(f"Invalid url: host {host} does not resolve", code="unresolvable_host")
    return addresses


def destination(url: str, *, allow_private: bool) -> Destination:
    """Resolve once and check every address; the first is the one to connect to."""
    scheme, host, port = parse_url(url)
    addresses = resolve(host, port)
    if not allow_private:
        for text in addresses:
            reason = refusal(ipaddress.ip_address(text.split("%", 1)[0]))
            if reason is not None:
                raise RefusedDestination(
                    f"Invalid url: {host} resolves to {text}, a {reason} address; webhooks "
                    "may only go to public addresses (OUTBOUND_WEBHOOKS_ALLOW_PRIVATE=true "
                    "allows private ones)"
                )
    return Destination(scheme=scheme, host=host, port=port, address=addresses[0])
