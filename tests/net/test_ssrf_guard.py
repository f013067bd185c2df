"""The SSRF guard: checked after DNS resolution, at connect time, on every redirect hop."""

from __future__ import annotations

import ipaddress
import time

import pytest

from sigwatch.errors import BlockedAddress, ConfigError
from sigwatch.net.guard import AddressPolicy, blocked_reason


async def test_loopback_url_is_blocked_by_default(server, make_client):
    url = server.serve("/feed", b"secret")
    client = make_client()

    with pytest.raises(BlockedAddress) as caught:
        await client.get(url)

    message = str(caught.value)
    assert "127.0.0.1" in message and "loopback" in message
    assert "SIGWATCH_ALLOW_PRIVATE_URLS=true" in message
    assert "SIGWATCH_ALLOWED_PRIVATE_NETWORKS" in message
    assert server.connections == 0


async def test_hostname_resolving_to_loopback_is_blocked(server, make_client):
    server.serve("/feed", b"secret")
    client = make_client()

    with pytest.raises(BlockedAddress, match=r"localhost \((127\.0\.0\.1|::1)\)"):
        await client.get(f"http://localhost:{server.port}/feed")

    assert server.connections == 0


async def test_hostname_is_checked_after_resolution_not_by_name(server, make_client, monkeypatch):
    # A public-looking name whose DNS answer is loopback: the rebinding case.
    import asyncio

    loop = asyncio.get_running_loop()
    real_getaddrinfo = loop.getaddrinfo

    async def rebinding_getaddrinfo(host, port, *args, **kwargs):
        if host == "feeds.example.com":
            host = "127.0.0.1"
        return await real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", rebinding_getaddrinfo)
    server.serve("/feed", b"secret")
    client = make_client()

    with pytest.raises(BlockedAddress, match=r"feeds\.example\.com \(127\.0\.0\.1\)"):
        await client.get(f"http://feeds.example.com:{server.port}/feed")

    assert server.connections == 0


async def test_blocked_address_reaches_the_caller_unwrapped(server, make_client):
    client = make_client()

    with pytest.raises(BlockedAddress) as caught:
        await client.get(server.url("/"))

    assert type(caught.value) is BlockedAddress


async def test_allowed_network_admits_the_server(server, make_client):
    url = server.serve("/feed", b"fine")
    client = make_client(allowed_networks=["127.0.0.0/30"])

    assert (await client.get(url)).body == b"fine"


async def test_allow_private_admits_loopback(server, make_client):
    url = server.serve("/feed", b"fine")
    client = make_client(allow_private=True)

    assert (await client.get(url)).body == b"fine"


async def test_redirect_to_another_loopback_address_is_blocked_without_connecting(
    start_server, make_client
):
    allowed = start_server("127.0.0.1")
    target = start_server("127.0.0.2")
    target.serve("/internal", b"secret")
    url = allowed.redirect("/feed", target.url("/internal"))
    client = make_client(allowed_networks=["127.0.0.1/32"])

    with pytest.raises(BlockedAddress, match=r"127\.0\.0\.2"):
        await client.get(url)

    assert [r.path for r in allowed.requests] == ["/feed"]
    assert target.connections == 0


@pytest.mark.parametrize(
    ("location", "address"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://10.0.0.1/admin", "10.0.0.1"),
        ("http://[::ffff:a9fe:a9fe]/latest/meta-data/", "::ffff:a9fe:a9fe"),
        ("http://[fd00::1]/", "fd00::1"),
        ("http://0.0.0.0/", "0.0.0.0"),
    ],
)
async def test_redirect_to_internal_address_is_blocked_before_connecting(
    server, make_client, location, address
):
    url = server.redirect("/feed", location)
    client = make_client(allowed_networks=["127.0.0.1/32"], timeout_s=5)

    started = time.monotonic()
    with pytest.raises(BlockedAddress) as caught:
        await client.get(url)

    assert address in str(caught.value)
    # Connecting to these would hang until the timeout; refusing is immediate.
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-public"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused_with_their_reason(address, reason):
    assert blocked_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert blocked_reason(ipaddress.ip_address(address)) is None


def test_allowed_networks_admit_only_their_range():
    policy = AddressPolicy(allowed_networks=["192.168.1.0/24"])

    assert policy.refusal(ipaddress.ip_address("192.168.1.5")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:192.168.1.5")) is None
    assert policy.refusal(ipaddress.ip_address("192.168.2.5")) == "private"
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) == "loopback"


def test_allowed_network_that_is_not_a_cidr_is_a_config_error():
    with pytest.raises(ConfigError, match="'intranet' is not a network"):
        AddressPolicy(allowed_networks=["intranet"])
