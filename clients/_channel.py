"""What the blocking and the asyncio client share about gRPC: channel options and the error rule."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Sequence
from typing import Any, Literal

from contract.status import error_from_rpc

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "Balance",
    "Target",
    "channel_authority",
    "channel_options",
    "channel_target",
    "error_from_rpc",
]

Target = str | Sequence[str]
"""A server address (``host:port``, or any gRPC target such as ``dns:///name:port``) or a list of ``host:port``."""
Balance = Literal["round_robin", "pick_first"]

# Calls that fail UNAVAILABLE (a server gone, draining or not reached) are tried again on another connection; the
# Open Inference Protocol's calls may run twice without harm. gRPC caps the attempts at 5.
_RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.05s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def channel_options(
    max_message_bytes: int,
    options: Sequence[tuple[str, Any]],
    balance: Balance | None = None,
    *,
    authority: str | None = None,
) -> list[tuple[str, Any]]:
    """Channel arguments: message size limits from ``max_message_bytes``; the calls' ``:authority`` when given;
    with ``balance``, a service config of that load-balancing policy which retries calls failing UNAVAILABLE; then
    ``options``, which win on conflict."""
    merged: dict[str, Any] = {
        "grpc.max_send_message_length": max_message_bytes,
        "grpc.max_receive_message_length": max_message_bytes,
    }
    if authority is not None:
        merged["grpc.default_authority"] = authority
    if balance is not None:
        config = {
            "loadBalancingConfig": [{balance: {}}],
            # Client-side health checking: a server reporting NOT_SERVING (draining) gets no new calls.
            "healthCheckConfig": {"serviceName": ""},
            "methodConfig": [{"name": [{}], "retryPolicy": _RETRY_POLICY}],
        }
        merged["grpc.service_config"] = json.dumps(config)
        merged["grpc.enable_retries"] = 1
    merged.update(options)
    return list(merged.items())


def channel_authority(target: Target) -> str | None:
    """The ``:authority`` of calls to a list of servers: its first address as given.

    gRPC would send the ``ipv4:`` target's comma-joined list, which is no valid authority: HTTP/2 servers that check
    it (Conduit's native front, hyper and Envoy among them) reset every call. It is also the name a TLS certificate
    is checked against, so the list's first name rather than a list no certificate can carry. ``None`` for a single
    target, whose authority gRPC derives itself.
    """
    if isinstance(target, str) or not target:
        return None
    return target[0]


def channel_target(target: Target, balance: Balance | None) -> tuple[str, Balance | None]:
    """The gRPC target of ``target`` and the balancing policy it gets.

    A list of ``host:port`` becomes one ``ipv4:``/``ipv6:`` target (host names resolved once, here; a ``dns:///``
    target re-resolves instead) balanced ``round_robin`` unless ``balance`` says otherwise; so is a ``dns:`` target,
    whose name may stand for several servers (a headless Service). A single address keeps ``balance``.

    Raises:
        ValueError: an empty list, an address without a port, or IPv4 and IPv6 addresses mixed.
    """
    if isinstance(target, str):
        if balance is None and target.startswith("dns:"):
            balance = "round_robin"
        return target, balance
    if not target:
        raise ValueError("no server address given")
    families: set[int] = set()
    addresses: list[str] = []
    for address in target:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{address!r} is not host:port")
        for ip in _resolve(host.strip("[]"), int(port)):
            families.add(ip.version)
            addresses.append(f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}")
    if len(families) > 1:
        raise ValueError("a list of servers is all IPv4 or all IPv6")
    scheme = "ipv6" if families == {6} else "ipv4"
    return f"{scheme}:{','.join(dict.fromkeys(addresses))}", balance or "round_robin"


def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"cannot resolve {host!r}: {exc.strerror}") from exc
    # One family for the whole list: IPv4 where the name has it.
    ips = [ipaddress.ip_address(str(info[4][0])) for info in found]
    v4 = [ip for ip in ips if ip.version == 4]
    return list(dict.fromkeys(v4 or ips))
