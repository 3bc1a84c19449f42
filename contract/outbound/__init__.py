"""Outbound requests a user's settings can aim (alert webhooks and mail, data imports): which destinations they may
reach, and one HTTP request made under that rule.

- ``OutboundPolicy``: public addresses, plus the hosts and networks an operator allows; loopback, private,
  link-local, multicast, unspecified, reserved and cloud metadata addresses refused otherwise. ``resolve`` checks every
  address a name resolves to, and the caller connects to one of those (no second lookup a changed DNS answer could
  redirect); ``check_host`` decides what a literal address or ``localhost`` settles before anything is sent.
- ``Refused``: its ``reason`` goes to the operator's log; anyone else is shown ``REFUSED``, the same text for every
  reason, so that outcomes reveal nothing about the network behind the control plane.
- ``request``: one HTTP request to a checked address, with the URL's host in ``Host`` and TLS, no redirects followed.
- ``parse_allow_list``: ``"host, 10.0.0.0/8, 127.0.0.1/32"`` into canonical entries (for settings).
"""

from contract.outbound._http import redacted_url, request
from contract.outbound._policy import (
    REFUSED,
    Address,
    OutboundPolicy,
    Refused,
    Resolver,
    forbidden,
    parse_allow_list,
    system_resolver,
)

__all__ = [
    "REFUSED",
    "Address",
    "OutboundPolicy",
    "Refused",
    "Resolver",
    "forbidden",
    "parse_allow_list",
    "redacted_url",
    "request",
    "system_resolver",
]
