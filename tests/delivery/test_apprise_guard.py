"""Apprise reaches nothing the SSRF guard refuses: reviewed schemes only, every socket checked.

Two layers are tested. The allowlist: a scheme whose plugin opens its own sockets (rsyslog's UDP,
MQTT, XMPP …) or acts on this machine (syslog, D-Bus, desktop notifications) is refused when the
channel is created and again when it sends. The checked sockets: every connection an allowed
plugin makes (each redirect hop and the mail server included) is checked at the address it is
about to connect to, so inside addresses in any spelling, names that resolve inside and names
that rebind between lookups are all refused. The stub resolver and socket spy (``ssrfcases``)
keep every packet on loopback.
"""

from __future__ import annotations

import inspect
import re
import socket

import pytest
from apprise.manager_plugins import NotificationManager
from pydantic import SecretStr, ValidationError

from sigwatch.delivery.channels.apprise import AppriseChannel, AppriseOptions
from sigwatch.delivery.channels.apprise_schemes import (
    ALLOWED_SCHEMES,
    EMAIL_SCHEMES,
    HTTP_SCHEMES,
    REFUSED_SCHEMES,
)
from sigwatch.errors import DeliveryError, PermanentDeliveryError
from sigwatch.net.client import OutboundClient
from ssrfcases import BAD_HOSTS, spy_on_sockets, stub_resolver

#: URL forms of the allowed services whose host the user chooses (self-hosted ones), ``{host}``
#: standing for where they point.
SELF_HOSTED = (
    "apprise://{host}/token",
    "apprises://{host}/token",
    "betterstack://token@{host}/",
    "emby://token@{host}/",
    "enigma2://{host}/",
    "flowtriq://user:pass@{host}/token/target",
    "form://{host}/",
    "forms://{host}/",
    "gotify://{host}/token",
    "hassio://{host}/token",
    "humhub://user:abcdefghijklmnopqrst@{host}/+15551234567",
    "jellyfin://token@{host}/",
    "json://{host}/",
    "jsons://{host}/",
    "kodi://{host}/",
    "lametric://token@{host}/",
    "mastodon://token@{host}/",
    "matrix://user:pass@{host}/",
    "misskey://token@{host}/",
    "mmost://{host}/token",
    "notica://{host}/token",
    "ntfy://{host}/token",
    "opsimate://token@{host}/",
    "parsep://user:pass@{host}/",
    "pinglet://user:pass@{host}/token/target",
    "pjet://{host}/token",
    "pushdeer://{host}/token",
    "rocket://user:pass@{host}/token/target",
    "signal://user:abcdefghijklmnopqrst@{host}/+15551234567",
    "synology://{host}/token",
    "toot://token@{host}/",
    "workflow://{host}/token/target",
    "xbmc://{host}/",
    "xml://{host}/",
)
#: Ways to point a self-hosted service inside: names resolving inside, and literal forms.
INSIDE_HOSTS = ("inside.test", "metadata.test", "169.254.169.254", "2130706434", "[fd00::1]")
#: Refused schemes, each in a form Apprise would otherwise accept, aimed at this machine.
NON_HTTP_URLS = (
    "rsyslog://127.0.0.1/local0",
    "syslog://",
    "syslog://local5",
    "mqtt://127.0.0.1/sigwatch/alerts",
    "mqtts://user:pass@127.0.0.1/sigwatch",
    "xmpp://user:pass@127.0.0.1/alice@example.com",
    "irc://sigwatch@127.0.0.1/#alerts",
    "growl://127.0.0.1",
    "smpp://user:pass@127.0.0.1/+15551234567/+15557654321",
    "amqp://user:pass@127.0.0.1/exchange",
    "aprs://user:pass@127.0.0.1/DF1JSL-15",
    "nostr://nsec1abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu/npub1xyz",
    "dbus://",
    "kde://",
    "qt://",
    "gnome://",
    "glib://",
    "windows://",
    "macosx://",
    "blink1://",
    "deltachat://user:pass@127.0.0.1?to=alice@example.com",
    "vapid://user@example.com/endpoint",
    "RSYSLOG://127.0.0.1",  # Apprise reads schemes case-insensitively
)
_OWN_SOCKETS = re.compile(
    r"^\s*(import|from)\s+(socket|smtplib|ssl|paho|slixmpp|gntp|dbus|gi|subprocess|hid|pika|"
    r"smpplib|syslog|websocket|\.\.?\.?utils\.socket|\.client|\.adapter)\b",
    re.M,
)


def apprise_plugin_modules(cls: type) -> str:
    """The source of every Apprise plugin module ``cls`` inherits from (its base excepted)."""
    sources = []
    for klass in cls.__mro__:
        module = inspect.getmodule(klass)
        if (
            module
            and module.__name__.startswith("apprise.plugins.")
            and klass.__name__ != ("NotifyBase")
        ):
            sources.append(inspect.getsource(module))
    return "\n".join(sources)


@pytest.fixture
def spy(monkeypatch):
    stub_resolver(monkeypatch)
    return spy_on_sockets(monkeypatch)


@pytest.fixture
def catcher(start_server):
    """A server on 127.0.0.2, where the loopback forms point: it must see no connection."""
    return start_server("127.0.0.2")


def _client(**overrides) -> OutboundClient:
    return OutboundClient(
        timeout_s=5,
        max_response_bytes=100_000,
        max_redirects=0,
        user_agent="sigwatch-test/1",
        **overrides,
    )


# Apprise channels take only the SSRF policy from their client, so one client per policy serves
# every test (building one per test costs an SSL context each time).
PUBLIC_ONLY = _client()
LOOPBACK_ONE = _client(allowed_networks=["127.0.0.1/32"])
EVERYTHING = _client(allow_private=True)


@pytest.fixture
def public_only() -> OutboundClient:
    """A client whose policy allows no private address at all (the default)."""
    return PUBLIC_ONLY


@pytest.fixture
def loopback_one() -> OutboundClient:
    """A client that may reach 127.0.0.1 only."""
    return LOOPBACK_ONE


def stored(url: str) -> AppriseOptions:
    """Options as a channel stored before its scheme was refused would give them (unvalidated)."""
    return AppriseOptions.model_construct(url=SecretStr(url), timeout_s=5.0)


# --- which schemes --------------------------------------------------------------------------


def test_every_allowed_scheme_is_served_by_a_plugin_that_connects_only_through_requests():
    manager = NotificationManager()
    for scheme in sorted(HTTP_SCHEMES):
        source = apprise_plugin_modules(manager[scheme])
        assert "import requests" in source, f"{scheme}:// does not use requests"
        found = _OWN_SOCKETS.search(source)
        assert found is None, f"{scheme}:// opens its own connections ({found and found[0]})"
    for scheme in EMAIL_SCHEMES:
        assert manager[scheme].__name__ == "NotifyEmail"


def test_every_scheme_apprise_knows_outside_the_allowlist_is_refused_at_creation():
    refused = sorted(set(NotificationManager().schemas()) - ALLOWED_SCHEMES)
    assert {"rsyslog", "syslog", "mqtt", "xmpp", "windows", "dbus", "growl"} <= set(refused)
    for scheme in refused:
        with pytest.raises(ValidationError, match="is not supported") as caught:
            AppriseOptions(url=f"{scheme}://127.0.0.1/x")
        assert f"{scheme}://" in str(caught.value)
        assert scheme in REFUSED_SCHEMES, f"{scheme}:// has no reason in REFUSED_SCHEMES"


@pytest.mark.parametrize("url", NON_HTTP_URLS)
def test_non_http_schemes_are_refused_saying_why_and_what_to_use_instead(url):
    with pytest.raises(ValidationError) as caught:
        AppriseOptions(url=url)

    message = str(caught.value)
    assert "is not supported" in message
    assert "HTTP(S)" in message and "mailto://" in message and "webhook channel" in message
    assert "docs/channels.md" in message


def test_rsyslog_is_refused_without_apprise_building_its_plugin(monkeypatch):
    import sigwatch.delivery.channels.apprise as channel_module

    def instantiate(url):
        raise AssertionError(f"Apprise asked to build {url}")

    monkeypatch.setattr(channel_module, "_instantiate", instantiate)
    with pytest.raises(ValidationError, match="UDP"):
        AppriseOptions(url="rsyslog://127.0.0.1")


def test_a_service_s_own_https_url_maps_to_its_allowed_plugin():
    options = AppriseOptions(url="https://discord.com/api/webhooks/4174216298/JHMHI8qBe7bk2ZwO5U")

    assert options.url.get_secret_value().startswith("https://discord.com/")


async def test_rsyslog_stored_before_is_refused_at_send_time_and_no_datagram_is_sent(
    make_message,
):
    # Even an operator who allows every private address does not get UDP syslog.
    client = EVERYTHING
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(0.3)
        port = receiver.getsockname()[1]
        channel = AppriseChannel(stored(f"rsyslog://127.0.0.1:{port}/local0"), client)

        with pytest.raises(PermanentDeliveryError) as caught:
            await channel.send(make_message())

        with pytest.raises(TimeoutError):
            receiver.recvfrom(65536)
    message = str(caught.value)
    assert "rsyslog:// is not supported" in message and "UDP" in message
    assert "edit the channel" in message


@pytest.mark.parametrize(
    "url",
    ["syslog://", "mqtt://127.0.0.1:{port}/alerts", "growl://127.0.0.1:{port}", "dbus://"],
)
async def test_other_refused_schemes_stored_before_are_refused_at_send_time(
    url, server, loopback_one, make_message
):
    channel = AppriseChannel(stored(url.format(port=server.port)), loopback_one)

    with pytest.raises(PermanentDeliveryError, match="is not supported"):
        await channel.send(make_message())

    assert server.connections == 0


# --- every allowed scheme, pointed inside ---------------------------------------------------


@pytest.mark.parametrize("bad", BAD_HOSTS, ids=str)
async def test_json_to_any_inside_address_form_is_refused_before_connecting(
    bad, spy, catcher, public_only, make_message
):
    url = f"json://{bad.host}:{catcher.port}/notify"
    try:
        options = AppriseOptions(url=url, timeout_s=5)
    except ValidationError as exc:  # Apprise does not take some spellings (127.2) as a host
        assert "not an Apprise URL" in str(exc)
    else:
        with pytest.raises(PermanentDeliveryError) as caught:
            await AppriseChannel(options, public_only).send(make_message())
        assert "refused to connect" in str(caught.value) and bad.address in str(caught.value)
    assert spy.attempts == [] and catcher.connections == 0


@pytest.mark.parametrize("host", INSIDE_HOSTS)
@pytest.mark.parametrize("form", SELF_HOSTED)
async def test_self_hosted_services_pointed_inside_are_refused_before_connecting(
    form, host, spy, catcher, public_only, make_message
):
    channel = AppriseChannel(
        AppriseOptions(url=form.format(host=f"{host}:{catcher.port}"), timeout_s=5), public_only
    )

    with pytest.raises(PermanentDeliveryError, match="refused to connect"):
        await channel.send(make_message())

    assert spy.attempts == [] and catcher.connections == 0


def _sample_urls() -> dict[str, str]:
    """A URL each allowed HTTP scheme accepts, found by trying common shapes."""
    shapes = (
        "{s}://token@example.com/",
        "{s}://example.com/token",
        "{s}://user:pass@example.com/token/target",
        "{s}://abcdefghijklmnopqrstuvwx/abcdefghijklmnopqrstuvwx/abcdefghijklmnopqrstuvwx",
        "{s}://user:abcdefghijklmnopqrst@example.com/+15551234567",
        "{s}://abcdefghijklmnopqrst/+15551234567",
        "{s}://abcdefghij1234567890@+15551234567",
        "{s}://user:pass@example.com/#room",
        "{s}://example.com/?token=abcdefabcdefabcdef",
        "{s}://abc123def456:abc123def456@example.com/+15551234567",
    )
    found = {}
    for scheme in sorted(HTTP_SCHEMES):
        for shape in shapes:
            url = shape.format(s=scheme)
            try:
                AppriseOptions(url=url)
            except ValidationError:
                continue
            found[scheme] = url
            break
    return found


SAMPLES = _sample_urls()


def test_most_allowed_schemes_have_a_sample_url_for_the_sweep():
    # 170 of 233 with Apprise 2.3.0; the rest are held to the allowlist by the structural test.
    assert len(SAMPLES) >= 0.7 * len(HTTP_SCHEMES), sorted(HTTP_SCHEMES - set(SAMPLES))


@pytest.mark.parametrize("scheme", sorted(SAMPLES))
async def test_every_allowed_service_whose_host_resolves_inside_connects_nowhere(
    scheme, monkeypatch, public_only, make_message
):
    # Every name (the service's own API host, api.telegram.org and the like) resolves to the
    # metadata address: whatever the plugin dials is refused before the socket connects.
    stub_resolver(monkeypatch, {}, every_other_name=["169.254.169.254"])
    spy = spy_on_sockets(monkeypatch)
    channel = AppriseChannel(AppriseOptions(url=SAMPLES[scheme], timeout_s=30), public_only)

    try:
        await channel.send(make_message())
    except PermanentDeliveryError as exc:
        assert "refused to connect" in str(exc) and "169.254.169.254" in str(exc)
    except DeliveryError as exc:  # the plugin gave up before connecting (a missing target)
        assert "could not be reached" not in str(exc), exc
    assert spy.attempts == []


async def test_telegram_whose_api_host_resolves_inside_is_refused_by_name(
    monkeypatch, public_only, make_message
):
    stub_resolver(monkeypatch, {"api.telegram.org": ["169.254.169.254"]})
    spy = spy_on_sockets(monkeypatch)
    url = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/12345"

    with pytest.raises(PermanentDeliveryError, match=r"api\.telegram\.org \(169\.254\.169\.254\)"):
        await AppriseChannel(AppriseOptions(url=url), public_only).send(make_message())

    assert spy.attempts == []


@pytest.mark.parametrize("scheme", ["mailto", "mailtos"])
async def test_a_mail_server_that_resolves_inside_is_refused_before_connecting(
    scheme, spy, catcher, loopback_one, make_message
):
    url = f"{scheme}://user:pass@inside.test:{catcher.port}?from=a@example.com&to=b@example.com"

    with pytest.raises(PermanentDeliveryError, match=r"inside\.test \(127\.0\.0\.2\)"):
        await AppriseChannel(AppriseOptions(url=url), loopback_one).send(make_message())

    assert spy.attempts == [] and catcher.connections == 0


# --- rebinding, redirects, proxies ----------------------------------------------------------


async def test_a_name_that_rebinds_after_a_check_is_connected_only_where_it_was_checked(
    monkeypatch, catcher, loopback_one, make_message
):
    # First answer allowed (127.0.0.1), every later one inside (127.0.0.2, where catcher is):
    # a guard that looks the name up and lets the library look it up again is fooled.
    stub_resolver(
        monkeypatch,
        {"rebind.test": lambda n: ["127.0.0.1"] if n == 1 else ["127.0.0.2"]},
    )
    spy = spy_on_sockets(monkeypatch)
    url = f"json://rebind.test:{catcher.port}/notify"

    with pytest.raises(DeliveryError):  # nothing listens on 127.0.0.1 at the catcher's port
        await AppriseChannel(AppriseOptions(url=url), loopback_one).send(make_message())

    assert catcher.connections == 0
    assert set(spy.destinations()) == {"127.0.0.1"}


@pytest.mark.parametrize("bad", BAD_HOSTS, ids=str)
async def test_a_redirect_to_any_inside_address_form_is_refused_before_connecting(
    bad, spy, server, catcher, loopback_one, make_message
):
    server.redirect("/notify", f"http://{bad.host}:{catcher.port}/internal", status=307)
    url = f"json://127.0.0.1:{server.port}/notify"

    with pytest.raises(DeliveryError) as caught:
        await AppriseChannel(AppriseOptions(url=url), loopback_one).send(make_message())

    if isinstance(caught.value, PermanentDeliveryError):
        assert "refused to connect" in str(caught.value) and bad.address in str(caught.value)
    assert [request.path for request in server.requests] == ["/notify"]
    assert set(spy.destinations()) == {"127.0.0.1"} and catcher.connections == 0


async def test_proxies_from_the_environment_are_not_used(
    monkeypatch, start_server, server, loopback_one, make_message
):
    proxy = start_server("127.0.0.1")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.setenv("http_proxy", proxy.url())
    server.serve("/notify", b"{}", headers={"Content-Type": "application/json"})

    await AppriseChannel(
        AppriseOptions(url=f"json://127.0.0.1:{server.port}/notify"), loopback_one
    ).send(make_message())

    assert [request.path for request in server.requests] == ["/notify"]
    assert proxy.connections == 0


def test_docs_list_every_allowed_scheme():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "channels.md").read_text()
    missing = sorted(scheme for scheme in ALLOWED_SCHEMES if f"`{scheme}`" not in text)
    assert missing == [], f"docs/channels.md does not list {missing}"
