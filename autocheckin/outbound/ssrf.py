"""Where a subscription may point: http(s) hosts on the public internet only.

A URL is resolved once and every address it resolves to is checked by `refusal`, the one
address check (registration and every attempt call it): an IPv6 address that carries an
IPv4 one (mapped ::ffff:0:0/96, translated ::ffff:0:0:0/96, compatible ::/96, NAT64
64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32) is judged by the IPv4 address(es) it
carries; the local-use NAT64 prefix 64:ff9b:1::/48 is refused whatever it carries (where
the IPv4 sits in it depends on the site's prefix length, and it is not global). What
remains must be global by the `ipaddress` module's properties: loopback, private, shared
(CGNAT), link-local (cloud metadata at 169.254.169.254 included), multicast, reserved and
unspecified addresses are refused. The sender then connects to the very address it
checked (`sender.PinnedAdapter`), so a DNS answer that changes between the check and
the connection (rebinding) cannot redirect it. `OUTBOUND_WEBHOOKS_ALLOW_PRIVATE=true`
lifts the address check (tests, or a receiver on the same private network).
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


_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SIXTOFOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")
# Prefixes whose last 32 bits are an IPv4 address the packet ends up at.
_LOW_32_BITS = (_MAPPED, _TRANSLATED, _COMPATIBLE, _NAT64)


def _carried(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 addresses an IPv6 address carries (Teredo: server and client), or None."""
    if any(address in network for network in _LOW_32_BITS):
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address in _SIXTOFOUR:
        return [address.sixtofour]  # type: ignore[list-item]
    if address in _TEREDO:
        return list(address.teredo)  # type: ignore[arg-type]
    return None


def _refusal_of_plain(address: IPAddress) -> str | None:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata lives there)"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address.is_private or address.is_reserved or not address.is_global:
        return "private or reserved"
    return None


def refusal(address: IPAddress) -> str | None:
    """Why an address may not be a webhook's destination, or None when it may: the one
    address check, for registration and every attempt alike."""
    if isinstance(address, ipaddress.IPv6Address) and not (
        address.is_loopback or address.is_unspecified  # ::1 and ::, inside ::/96 too
    ):
        if address in _NAT64_LOCAL:
            return "local-use NAT64 (64:ff9b:1::/48)"
        carried = _carried(address)
        if carried is not None:
            for inner in carried:
                reason = _refusal_of_plain(inner)
                if reason is not None:
                    return f"{reason} (IPv4 {inner} inside IPv6)"
            return None
    return _refusal_of_plain(address)


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
