"""The outbound policy: which addresses are refused by default and why, what an allow-list opens, and that every
address a name resolves to is checked. Names resolve through a table the tests pass, so that any name can stand for
any address; ``.test`` names never resolve on a real resolver (RFC 6761)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence

import pytest

from contract.outbound import OutboundPolicy, Refused, Resolver, forbidden, parse_allow_list


def table(names: Mapping[str, Sequence[str]], calls: list[str] | None = None) -> Resolver:
    """A resolver answering from ``names`` (recording each name asked in ``calls``); other names do not resolve."""

    def resolve(host: str, port: int) -> Sequence[str]:
        if calls is not None:
            calls.append(host)
        if host in names:
            return names[host]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    return resolve


def refused(policy: OutboundPolicy, host: str, port: int = 443) -> str:
    with pytest.raises(Refused) as caught:
        policy.resolve(host, port)
    return caught.value.reason


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "reserved"),
        ("198.18.0.1", "reserved"),
        ("2001:db8::1", "reserved"),
        ("2001::1", "reserved"),
        # IPv6 forms that reach an IPv4 address: judged by the address they reach.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),
        ("2002:a00:1::1", "private"),
    ],
)
def test_addresses_that_are_not_public_are_refused_by_kind(address: str, kind: str) -> None:
    assert forbidden(ipaddress.ip_address(address)) == kind
    reason = refused(OutboundPolicy(), address)
    assert kind in reason


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "2002:808:808::1"])
def test_public_addresses_pass(address: str) -> None:
    assert forbidden(ipaddress.ip_address(address)) is None
    assert OutboundPolicy().resolve(address, 443) == [ipaddress.ip_address(address)]


def test_every_address_a_name_resolves_to_is_checked() -> None:
    policy = OutboundPolicy(resolver=table({"mixed.test": ["93.184.216.34", "10.0.0.1"], "ok.test": ["8.8.8.8"]}))
    # One private answer among public ones is enough: the connection could go to any of them.
    assert refused(policy, "mixed.test") == "mixed.test resolves to 10.0.0.1, a private address"
    assert policy.resolve("ok.test", 443) == [ipaddress.ip_address("8.8.8.8")]
    assert refused(policy, "nowhere.test").startswith("nowhere.test does not resolve")


def test_names_that_resolve_to_loopback_are_refused_like_the_address() -> None:
    # The system's resolver: localhost is loopback on every machine.
    assert refused(OutboundPolicy(), "localhost", 80) == "localhost resolves to 127.0.0.1, a loopback address"
    policy = OutboundPolicy(resolver=table({"rebound.test": ["127.0.0.1"]}))
    assert refused(policy, "rebound.test") == "rebound.test resolves to 127.0.0.1, a loopback address"


def test_an_allow_list_opens_networks_and_names() -> None:
    resolver = table({"alerts.corp.test": ["10.1.2.3"], "other.corp.test": ["10.1.2.4"], "lo.test": ["127.0.0.1"]})
    policy = OutboundPolicy("127.0.0.1/32, 10.0.0.1, alerts.corp.test", resolver=resolver)
    assert policy.resolve("127.0.0.1", 80) == [ipaddress.ip_address("127.0.0.1")]
    assert policy.resolve("10.0.0.1", 80) == [ipaddress.ip_address("10.0.0.1")]
    # A listed name is trusted whatever it resolves to; a network allows what it holds, whatever the name.
    assert policy.resolve("alerts.corp.test", 80) == [ipaddress.ip_address("10.1.2.3")]
    assert policy.resolve("lo.test", 80) == [ipaddress.ip_address("127.0.0.1")]
    assert "private" in refused(policy, "other.corp.test")
    assert "loopback" in refused(policy, "127.0.0.2")
    assert "private" in refused(policy, "10.0.0.2")
    assert OutboundPolicy("10.0.0.0/8").resolve("10.255.0.9", 80) == [ipaddress.ip_address("10.255.0.9")]


def test_cloud_metadata_is_reached_only_when_listed_as_that_one_address() -> None:
    resolver = table({"metadata.test": ["169.254.169.254"]})
    for wide in ("169.254.0.0/16", "0.0.0.0/0", "metadata.test"):
        policy = OutboundPolicy(wide, resolver=resolver)
        assert "cloud metadata" in refused(policy, "169.254.169.254")
        assert "cloud metadata" in refused(policy, "metadata.test")
    assert OutboundPolicy("169.254.0.0/16").resolve("169.254.1.1", 80) == [ipaddress.ip_address("169.254.1.1")]
    exact = OutboundPolicy("169.254.169.254/32", resolver=resolver)
    assert exact.resolve("metadata.test", 80) == [ipaddress.ip_address("169.254.169.254")]


@pytest.mark.parametrize(
    ("host", "said"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("10.0.0.1", "10.0.0.1 is a private address"),
        ("169.254.169.254", "169.254.169.254 is a cloud metadata address"),
        ("::1", "::1 is a loopback address"),
        ("fe80::1%eth0", "fe80::1 is a link-local address"),
        # Numeric forms the system's resolver reads as addresses, without asking any DNS server.
        ("127.1", "127.0.0.1 is a loopback address"),
        ("2130706433", "127.0.0.1 is a loopback address"),
        ("0x7f.0.0.1", "127.0.0.1 is a loopback address"),
        ("0177.0.0.1", "127.0.0.1 is a loopback address"),
        ("localhost", "localhost is a loopback name"),
        ("LocalHost.", "localhost is a loopback name"),
        ("api.localhost", "api.localhost is a loopback name"),
    ],
)
def test_what_needs_no_dns_is_decided_at_once(host: str, said: str) -> None:
    calls: list[str] = []
    policy = OutboundPolicy(resolver=table({}, calls))
    with pytest.raises(Refused) as caught:
        policy.check_host(host)
    assert caught.value.reason == said
    assert calls == []


def test_names_and_allowed_literals_pass_the_check_without_a_lookup() -> None:
    calls: list[str] = []
    policy = OutboundPolicy("127.0.0.1/32", resolver=table({}, calls))
    for host in ("hooks.example.com", "8.8.8.8", "127.0.0.1", "localhost", "intranet.test"):
        policy.check_host(host)
    assert calls == []
    with pytest.raises(Refused):
        policy.check_host("::1")


def test_allow_lists_parse_to_canonical_entries() -> None:
    assert parse_allow_list(" 127.0.0.1/32 , Alerts.Corp.Example., ::1, fd00::/8,, 10.0.0.1") == (
        "127.0.0.1/32", "alerts.corp.example", "::1/128", "fd00::/8", "10.0.0.1/32",
    )  # fmt: skip
    assert parse_allow_list(["localhost", "localhost"]) == ("localhost",)
    assert parse_allow_list("") == ()


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ("10.0.0.1/8", "'10.0.0.1/8' has host bits set: write 10.0.0.0/8 for the network, or the address alone"),
        ("10.0.0.0/33", "'10.0.0.0/33' is neither a host name nor an address or CIDR"),
        ("http://hooks.example", "'http://hooks.example' is neither a host name nor an address or CIDR"),
        ("two words", "'two words' is neither a host name nor an address or CIDR"),
        ("-bad.example", "'-bad.example' is neither a host name nor an address or CIDR"),
    ],
)
def test_a_bad_allow_list_entry_is_one_line(entry: str, said: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_allow_list(f"127.0.0.1/32,{entry}")
    assert str(caught.value) == said
