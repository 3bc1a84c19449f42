"""Which addresses an outbound request may reach: public ones, and those an operator allowed by name or network.

Loopback, private, link-local, multicast, unspecified, reserved and cloud metadata addresses are refused unless the
allow-list names the host or holds a network around the address. The check runs on every address a name resolves to,
and the caller connects to one of those very addresses: the name is never resolved again between check and connect,
so a DNS answer that changes in between (rebinding) reaches nothing unchecked.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "REFUSED",
    "Address",
    "OutboundPolicy",
    "Refused",
    "Resolver",
    "forbidden",
    "parse_allow_list",
    "system_resolver",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port)`` to the addresses it resolves to, as text; raises ``OSError`` when it does not resolve."""

REFUSED = "destination refused: not allowed or not resolvable (the control plane's log says why)"
"""What a refused destination reports to whoever may read a request's outcome: the same text whatever the reason, so
that outcomes tell nothing about what is inside the network (listening or not, existing name or not)."""

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# Special-purpose address blocks (IANA's registries), most specific first. Written out rather than taken from
# ipaddress's is_private/is_global, whose answers changed between Python patch releases.
_BLOCKS: tuple[tuple[Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "private"),  # shared address space (carrier-grade NAT)
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "reserved"),
    (_V4("192.0.2.0/24"), "reserved"),
    (_V4("192.88.99.0/24"), "reserved"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "reserved"),
    (_V4("198.51.100.0/24"), "reserved"),
    (_V4("203.0.113.0/24"), "reserved"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),  # and the broadcast address
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("::/8"), "reserved"),  # IPv4-compatible and the rest of the block
    (_V6("64:ff9b:1::/48"), "private"),  # local-use NAT64
    (_V6("100::/64"), "reserved"),  # discard-only
    (_V6("2001::/23"), "reserved"),  # IETF protocol assignments: Teredo, ORCHID, benchmarking
    (_V6("2001:db8::/32"), "reserved"),
    (_V6("3fff::/20"), "reserved"),
    (_V6("5f00::/16"), "reserved"),
    (_V6("fc00::/7"), "private"),  # unique local
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "private"),  # site-local, deprecated
    (_V6("ff00::/8"), "multicast"),
)
# Instance metadata services answer credentials to whoever asks from inside the instance. Most sit in blocks refused
# anyway; they are refused even where an allowed network covers them, unless allowed as that one address.
_METADATA = frozenset(
    ipaddress.ip_address(text)
    for text in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean…
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
    )
)
_NAT64 = _V6("64:ff9b::/96")
# RFC 6761: these names are loopback wherever they are resolved.
_LOOPBACK_NAMES = ("localhost", ".localhost")
# Letters, digits, hyphens; underscores too, which some internal names carry and resolvers accept.
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches through a translator (IPv4-mapped, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def forbidden(address: Address) -> str | None:
    """Why ``address`` is refused by default (``"loopback"``, ``"private"``, ``"cloud metadata"``…); None when it
    is public."""
    if address in _METADATA:
        return "cloud metadata"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None:
            return forbidden(embedded)
    for network, reason in _BLOCKS:
        if address.version == network.version and address in network:
            return reason
    return None


def _address(text: str) -> Address | None:
    # getaddrinfo writes scoped IPv6 addresses as fe80::1%eth0; the scope does not change what the address is.
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


def _normal_host(host: str) -> str:
    """``host`` as compared with the allow-list: lower case, no trailing dot, IDNA-encoded.

    Raises:
        ValueError: not a host name.
    """
    host = host.strip().lower().removesuffix(".")
    if _address(host) is not None:
        return host
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{host!r} is not a valid host name") from None
    if not ascii_host or len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in ascii_host.split(".")):
        raise ValueError(f"{host!r} is not a valid host name")
    return ascii_host


def _entry(text: str) -> Network | str:
    if "/" in text or _address(text) is not None:
        try:
            return ipaddress.ip_network(text)
        except ValueError:
            pass
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is neither a host name nor an address or CIDR") from None
        # 10.0.0.1/8: a typo for 10.0.0.1/32 or for 10.0.0.0/8? Guessing would open more, or less, than meant.
        raise ValueError(f"{text!r} has host bits set: write {loose} for the network, or the address alone")
    try:
        return _normal_host(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a host name nor an address or CIDR") from None


def parse_allow_list(value: str | Iterable[str]) -> tuple[str, ...]:
    """The entries of an allow-list written as ``"host, 10.0.0.0/8, 127.0.0.1/32"`` (or already split), each in its
    canonical form; empty entries are skipped.

    Raises:
        ValueError: one line naming the first entry that is neither a host name nor an address or CIDR (a CIDR with
            host bits set, like ``10.0.0.1/8``, is refused rather than guessed at).
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        if item.strip():
            entry = _entry(item.strip())
            out.append(str(entry))
    return tuple(dict.fromkeys(out))


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system's resolver gives for ``host`` (a literal address gives itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


class Refused(Exception):
    """A destination the policy does not allow, or whose name does not resolve.

    ``reason`` says precisely why in a sentence naming the host (``10.0.0.1 is a private address``), for the
    operator's log only: callers show others ``REFUSED``, which is the same whatever the reason.
    """

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(reason)
        self.host = host
        self.reason = reason


class OutboundPolicy:
    """Where outbound requests may go.

    Args:
        allow: host names, addresses and CIDRs (``parse_allow_list``'s entries) reached although they are not public.
            A name is trusted whatever it resolves to; a network allows the addresses in it. A cloud metadata address
            is reached only when listed as that single address (``169.254.169.254/32``), never through a wider
            network or a name.
        resolver: resolves names; the system's by default (tests pass their own).

    Raises:
        ValueError: an entry of ``allow`` is neither a host name nor an address or CIDR.
    """

    def __init__(self, allow: str | Iterable[str] = (), *, resolver: Resolver = system_resolver) -> None:
        self.allow = parse_allow_list(allow)
        entries = [_entry(text) for text in self.allow]
        self._names = {entry for entry in entries if isinstance(entry, str)}
        self._networks = [entry for entry in entries if not isinstance(entry, str)]
        self._resolver = resolver

    def __repr__(self) -> str:
        return f"OutboundPolicy(allow={self.allow!r})"

    def _refusal(self, name: str | None, address: Address) -> str | None:
        reason = forbidden(address)
        if reason is None:
            return None
        if reason == "cloud metadata":
            exact = any(net.num_addresses == 1 and net.network_address == address for net in self._networks)
            return None if exact else reason
        if name is not None and name in self._names:
            return None
        if any(address.version == net.version and address in net for net in self._networks):
            return None
        return reason

    def check_host(self, host: str) -> None:
        """What can be decided without resolving: a literal address (in any form the system accepts, ``127.1`` and
        ``0x7f000001`` included) or a name that is loopback everywhere (``localhost``) that the policy refuses. For
        validating a destination when it is configured; requests still go through ``resolve``.

        Raises:
            Refused: with the reason.
        """
        try:
            name = _normal_host(host)
        except ValueError as exc:
            raise Refused(host, str(exc)) from None
        literal = _address(name) or _numeric(name)
        if literal is not None:
            reason = self._refusal(None, literal)
            if reason is not None:
                raise Refused(host, f"{literal} is a {reason} address")
            return
        loopback_name = name == _LOOPBACK_NAMES[0] or name.endswith(_LOOPBACK_NAMES[1])
        if loopback_name and self._refusal(name, ipaddress.IPv4Address("127.0.0.1")) is not None:
            raise Refused(host, f"{name} is a loopback name")

    def resolve(self, host: str, port: int) -> list[Address]:
        """The addresses to connect to for ``host``, each checked: resolved once, refused if any one is refused (a
        name answering both a public and a private address is not trusted with either).

        Raises:
            Refused: the host is not allowed, or does not resolve.
        """
        try:
            name = _normal_host(host)
        except ValueError as exc:
            raise Refused(host, str(exc)) from None
        literal = _address(name) or _numeric(name)
        try:
            answers = [str(literal)] if literal is not None else list(self._resolver(name, port))
        except (OSError, UnicodeError) as exc:
            raise Refused(host, f"{name} does not resolve: {exc}") from None
        addresses: list[Address] = []
        for text in answers:
            address = _address(text)
            if address is None:
                raise Refused(host, f"{name} resolves to {text!r}, which is not an address")
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            reason = self._refusal(name, address)
            if reason is not None:
                said = f"{name} is" if literal is not None else f"{name} resolves to {address},"
                raise Refused(host, f"{said} a {reason} address")
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise Refused(host, f"{name} does not resolve to any address")
        return addresses


def _numeric(host: str) -> Address | None:
    """The address a numeric host stands for in the forms the system's resolver accepts (``127.1``, ``2130706433``,
    ``0x7f.0.0.1``), without asking any DNS server; None for a name."""
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return None
    return _address(str(infos[0][4][0])) if infos else None
