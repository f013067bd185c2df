"""Every spelling of an inside address is refused before connecting: sources, webhooks, redirects.

The table is ``ssrfcases.BAD_HOSTS``: loopback, private, link-local, unique- and site-local, CGNAT,
multicast, broadcast and reserved addresses, written as decimal, hex, octal and short IPv4 forms,
IPv4-mapped, -compatible, NAT64 and 6to4 IPv6 forms, and names that resolve inside. Each is sent
end to end through the outbound client (whose URL parser may read the host differently from
``ipaddress``); the check is on the address the socket is handed, and the socket spy proves no
connection was even attempted. A server on 127.0.0.2 catches anything that slips through.
"""

from __future__ import annotations

import ipaddress
import socket
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from sigwatch.delivery.channels.webhook import WebhookChannel, WebhookOptions
from sigwatch.delivery.message import AlertMessage
from sigwatch.errors import BlockedAddress, FetchError, PermanentDeliveryError
from sigwatch.net.guard import AddressPolicy, RefusedConnection, blocked_reason, checked_sockets
from ssrfcases import BAD_HOSTS, BadHost, spy_on_sockets, stub_resolver


@pytest.fixture
def spy(monkeypatch):
    stub_resolver(monkeypatch)
    return spy_on_sockets(monkeypatch)


@pytest.fixture
def catcher(start_server):
    """A server on 127.0.0.2: the loopback forms in the table all point at it."""
    return start_server("127.0.0.2")


def url_for(bad: BadHost, port: int, path: str = "/feed") -> str:
    return f"http://{bad.host}:{port}{path}"


def assert_refused(error: Exception, bad: BadHost) -> None:
    # httpx refuses a few spellings (0177.0.0.2) as invalid URLs before any lookup: also a refusal.
    if isinstance(error, BlockedAddress):
        assert bad.address in str(error) and "SIGWATCH_ALLOWED_PRIVATE_NETWORKS" in str(error)
    else:
        assert "invalid url" in str(error).lower(), error


@pytest.mark.parametrize("bad", BAD_HOSTS, ids=str)
async def test_source_fetch_of_any_inside_address_form_is_refused_before_connecting(
    bad, spy, catcher, make_client
):
    client = make_client()

    with pytest.raises(FetchError) as caught:
        await client.get(url_for(bad, catcher.port))

    assert_refused(caught.value, bad)
    assert spy.attempts == [] and catcher.connections == 0


MESSAGE = AlertMessage(
    alert_id=1,
    idempotency_key="alert-1-channel-1",
    event="tge",
    entity="Example",
    title="Example announces its TGE",
    summary="",
    confidence=0.9,
    urgency="high",
    url=None,
    evidence=[],
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)


@pytest.mark.parametrize("bad", BAD_HOSTS, ids=str)
async def test_webhook_post_to_any_inside_address_form_is_refused_before_connecting(
    bad, spy, catcher, make_client
):
    url = url_for(bad, catcher.port, "/hook")
    try:
        options = WebhookOptions(url=url)
    except ValidationError as refused:  # a URL no request can use (0177.0.0.2) is never stored
        assert "not a URL sigwatch can request" in str(refused)
    else:
        webhook = WebhookChannel(options, make_client())
        with pytest.raises(PermanentDeliveryError) as caught:
            await webhook.send(MESSAGE)
        assert "refused" in str(caught.value) and bad.address in str(caught.value)
    assert spy.attempts == [] and catcher.connections == 0


@pytest.mark.parametrize("bad", BAD_HOSTS, ids=str)
async def test_redirect_to_any_inside_address_form_is_refused_before_connecting(
    bad, spy, server, catcher, make_client
):
    # The first hop is a real server on 127.0.0.1, allowed for this test only.
    url = server.redirect("/feed", url_for(bad, catcher.port, "/internal"))
    client = make_client(allowed_networks=["127.0.0.1/32"])

    with pytest.raises(FetchError) as caught:
        await client.get(url)

    assert_refused(caught.value, bad)
    assert [r.path for r in server.requests] == ["/feed"]
    assert spy.destinations() == ["127.0.0.1"] and catcher.connections == 0


async def test_localhost_is_refused_by_default(spy, server, make_client):
    with pytest.raises(BlockedAddress, match=r"localhost \(127\.0\.0\.1\)"):
        await make_client().get(f"http://localhost:{server.port}/feed")

    assert spy.attempts == [] and server.connections == 0


# --- the classification itself --------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("fec0::1", "site-local"),  # deprecated site-local: routed inside some networks
        ("::127.0.0.1", "loopback"),  # IPv4-compatible
        ("::a00:1", "private"),
        ("::8.8.8.8", "reserved"),  # IPv4-compatible of a public address: deprecated form
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of the metadata address
        ("64:ff9b:1::a00:1", "private"),  # local-use NAT64 prefix
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
        ("::ffff:7f00:1", "loopback"),
        ("255.255.255.255", "broadcast"),
        ("100.127.255.254", "non-public"),
        ("fe80::1%eth0", "link-local"),
    ],
)
def test_embedded_and_deprecated_forms_are_judged_by_where_they_lead(address, reason):
    assert blocked_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"])
def test_embedded_forms_of_public_addresses_pass(address):
    assert blocked_reason(ipaddress.ip_address(address)) is None


def test_an_allowed_network_admits_its_addresses_in_embedded_forms_too():
    policy = AddressPolicy(allowed_networks=["10.0.0.0/8"])

    assert policy.refusal(ipaddress.ip_address("64:ff9b::a00:1")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:10.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("64:ff9b::a9fe:a9fe")) == "link-local"


# --- checked sockets: what blocking code (Apprise) connects through -------------------------


def test_checked_sockets_refuse_a_datagram_to_loopback_and_nothing_arrives():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(0.2)
        with (
            checked_sockets(AddressPolicy()) as check,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
            pytest.raises(RefusedConnection, match=r"127\.0\.0\.1.*loopback"),
        ):
            sender.sendto(b"<14>hello", receiver.getsockname())
        with pytest.raises(TimeoutError):
            receiver.recv(100)
    assert len(check.refusals) == 1


def test_checked_sockets_resolve_a_name_once_and_connect_to_the_checked_address(
    monkeypatch, server
):
    answers = iter(["127.0.0.1", "127.0.0.2"])  # a second lookup would answer differently
    lookups = stub_resolver(monkeypatch, {"rebind.test": lambda n: [next(answers)]})
    spy = spy_on_sockets(monkeypatch)
    policy = AddressPolicy(allowed_networks=["127.0.0.1/32"])

    with checked_sockets(policy), socket.socket() as sock:
        sock.connect(("rebind.test", server.port))

    assert lookups == {"rebind.test": 1}
    assert spy.attempts == [("connect", ("127.0.0.1", server.port))]


def test_checked_sockets_refuse_unix_sockets(tmp_path):
    with (
        checked_sockets(AddressPolicy(allow_private=True)),
        socket.socket(socket.AF_UNIX) as sock,
        pytest.raises(RefusedConnection, match="AF_UNIX"),
    ):
        sock.connect(str(tmp_path / "socket"))


def test_sockets_outside_a_checked_block_are_untouched(server):
    with checked_sockets(AddressPolicy()):
        pass
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
        sock.sendall(b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(12) == b"HTTP/1.1 404"
