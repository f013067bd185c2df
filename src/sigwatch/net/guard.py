"""The SSRF guard: which addresses sigwatch may reach, enforced when a connection is opened.

For the outbound client the check runs inside httpcore's network backend, after DNS resolution
and right before the TCP connect, and the socket is opened to the very IP literal that passed the
check. Blocking code that opens its own sockets (Apprise, through ``requests`` and ``smtplib``)
runs inside :func:`checked_sockets`, which checks the address each socket of that thread is about
to connect or send to. Checking the URL's host name earlier would let DNS rebinding (a name that
resolves to a public address when checked and to 127.0.0.1 when connected) slip through, and URL
parsers disagree on spellings such as ``0x7f.1`` or ``2130706433``; checking the address a socket
is handed has neither gap.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from sigwatch.errors import BlockedAddress, ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_HINT = (
    "set SIGWATCH_ALLOW_PRIVATE_URLS=true to allow all private addresses, or add the network "
    "to SIGWATCH_ALLOWED_PRIVATE_NETWORKS (e.g. 192.168.1.0/24)"
)


def parse_networks(networks: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse CIDR strings, raising ConfigError that names the bad entry."""
    parsed: list[IPNetwork] = []
    for network in networks:
        try:
            parsed.append(ipaddress.ip_network(network.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"SIGWATCH_ALLOWED_PRIVATE_NETWORKS entry {network!r} is not a network: "
                "give CIDRs such as 192.168.1.0/24 or fd00::/8"
            ) from None
    return tuple(parsed)


_NAT64_PREFIXES = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # the well-known prefix (RFC 6052)
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
)
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d (RFC 4291)
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")  # deprecated, still routed inside some sites
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 ``address`` carries and reaches, if it is of such a form.

    IPv4-mapped (``::ffff:a.b.c.d``), IPv4-compatible (``::a.b.c.d``), NAT64 (``64:ff9b::/96``),
    6to4 (``2002::/16``) and Teredo addresses all lead to an IPv4 host, so the guard judges that
    host: ``::ffff:7f00:1`` is loopback however it is spelt.
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in prefix for prefix in _NAT64_PREFIXES):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # not :: nor ::1
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination (e.g. ``"loopback"``), or None if it is."""
    embedded = embedded_ipv4(address)
    if embedded is not None:
        reason = blocked_reason(embedded)
        if reason is not None:
            return reason
        if address in _IPV4_COMPATIBLE:
            return "reserved"  # deprecated since 2006: no public host is reached this way
        if isinstance(address, ipaddress.IPv6Address) and address.teredo is None:
            return None  # NAT64 or 6to4 of a public IPv4 address is as public as that address
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address in _SITE_LOCAL),
        ("multicast", address.is_multicast),
        ("broadcast", address == _BROADCAST),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        # Shared (carrier-grade NAT), documentation and similar ranges are not private in
        # Python's terms but are not on the public internet either.
        ("non-public", not address.is_global),
    )
    for reason, hit in checks:
        if hit:
            return reason
    return None


class AddressPolicy:
    """Decides whether a resolved IP address may be connected to."""

    def __init__(self, *, allow_private: bool = False, allowed_networks: Sequence[str] = ()):
        self.allow_private = allow_private
        self.allowed_networks = parse_networks(allowed_networks)

    def refusal(self, address: IPAddress) -> str | None:
        """Why connecting to ``address`` is refused, or None when it is allowed."""
        if self.allow_private:
            return None
        reason = blocked_reason(address)
        if reason is None:
            return None
        candidates: list[IPAddress] = [address]
        embedded = embedded_ipv4(address)
        if embedded is not None:
            candidates.append(embedded)
        for network in self.allowed_networks:
            if any(candidate in network for candidate in candidates):
                return None
        return reason

    def check(self, host: str, address: IPAddress) -> None:
        """Raise BlockedAddress when ``host``'s resolved ``address`` may not be reached."""
        reason = self.refusal(address)
        if reason is not None:
            raise blocked(host, address, reason)


def blocked(host: str, address: IPAddress, reason: str) -> BlockedAddress:
    """The BlockedAddress error for ``host`` resolving to a refused ``address``."""
    where = f"{host} ({address})" if host != str(address) else str(address)
    article = "an" if reason[0] in "aeiou" else "a"
    return BlockedAddress(
        f"refused to connect to {where}: it is {article} {reason} address and sigwatch connects "
        f"only to public ones; {ALLOW_HINT}"
    )


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves, checks, then connects to the checked IP."""

    def __init__(
        self, policy: AddressPolicy, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Open a TCP connection to an allowed address of ``host``, or raise BlockedAddress."""
        deadline = None if timeout is None else time.monotonic() + timeout
        addresses = await _resolve(host, port, timeout)
        allowed: list[IPAddress] = []
        first_refusal: tuple[IPAddress, str] | None = None
        for address in addresses:
            reason = self._policy.refusal(address)
            if reason is None:
                allowed.append(address)
            elif first_refusal is None:
                first_refusal = (address, reason)
        if not allowed:
            assert first_refusal is not None  # _resolve never returns an empty list
            raise blocked(host, *first_refusal)
        # Only addresses that passed the check are ever dialled; refused ones are skipped.
        last_error: Exception | None = None
        for address in allowed:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Refuse: a Unix socket is a local destination the guard cannot vet."""
        raise BlockedAddress(f"refused to connect to the Unix socket {path}: {ALLOW_HINT}")

    async def sleep(self, seconds: float) -> None:
        """Sleep, as the wrapped backend does."""
        await self._inner.sleep(seconds)


async def _resolve(host: str, port: int, timeout: float | None) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        # IPv6 sockaddrs may carry a zone ("fe80::1%eth0"); the address part is what matters.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise httpcore.ConnectError(f"could not resolve {host}: no addresses")
    return addresses


def guarded_transport(policy: AddressPolicy) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every TCP connection passes ``policy`` at connect time."""
    transport = httpx.AsyncHTTPTransport(retries=0)
    # httpx 0.28 builds its httpcore pool inside AsyncHTTPTransport.__init__ and offers no
    # parameter for the network backend, which is where the post-DNS check has to live. So the
    # (never used) pool is swapped for one with the same defaults plus the guarded backend.
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        retries=0,
        network_backend=GuardedBackend(policy),
    )
    return transport


# --- sockets opened by blocking library code --------------------------------------------------


class RefusedConnection(ConnectionRefusedError):
    """What a checked socket raises instead of connecting to a refused address.

    An OSError, so the library that opened the socket closes it and reports a failed connection
    as it would for any other; the BlockedAddress behind it is kept on the :class:`SocketCheck`.
    """


@dataclass(slots=True)
class SocketCheck:
    """One :func:`checked_sockets` block: its policy, the host being dialled, what it refused."""

    policy: AddressPolicy
    #: The host name the caller is connecting to, for messages (sockets see only addresses).
    host: str | None = None
    refusals: list[BlockedAddress] = field(default_factory=list)


_active_check: contextvars.ContextVar[SocketCheck | None] = contextvars.ContextVar(
    "sigwatch_socket_check", default=None
)
_install_lock = threading.Lock()
_INET_FAMILIES = (socket.AF_INET, socket.AF_INET6)


@contextmanager
def checked_sockets(policy: AddressPolicy) -> Iterator[SocketCheck]:
    """Within the block, every socket connect or send of this thread is checked by ``policy``.

    A destination given by name is resolved here and the socket is handed the checked address, so
    no second lookup can answer differently. Unix and other non-IP sockets are refused. Threads
    the block starts do not inherit the check: run only code that connects in its own thread.
    """
    _install_socket_checks()
    check = SocketCheck(policy)
    token = _active_check.set(check)
    try:
        yield check
    finally:
        _active_check.reset(token)


def _vetted(sock: socket.socket, address: Any) -> Any:
    """``address`` (or the checked address its name resolves to) if the active check allows it."""
    check = _active_check.get()
    if check is None:
        return address
    if sock.family not in _INET_FAMILIES:
        refusal = BlockedAddress(
            f"refused to open a {socket.AddressFamily(sock.family).name} socket to {address!r}: "
            f"sigwatch connects only to public IP addresses; {ALLOW_HINT}"
        )
        check.refusals.append(refusal)
        raise RefusedConnection(str(refusal))
    host, port = str(address[0]), address[1]
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        infos = socket.getaddrinfo(host, port, sock.family, sock.type)
        if not infos:
            raise OSError(f"could not resolve {host}: no addresses") from None
        address = infos[0][4]
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
    reason = check.policy.refusal(ip)
    if reason is not None:
        refusal = blocked(check.host or host, ip, reason)
        check.refusals.append(refusal)
        raise RefusedConnection(str(refusal))
    return address


def _install_socket_checks() -> None:
    """Wrap ``socket.socket``'s connect and send-to methods once, process-wide.

    Outside a :func:`checked_sockets` block the wrappers pass straight through (one context
    variable read). The marker is on the installed method rather than in a flag, so the check is
    put back if something (a test's monkeypatch) restores the methods it wrapped.
    """
    with _install_lock:
        if getattr(socket.socket.connect, "_sigwatch_checked", False):
            return
        connect: Callable[..., Any] = socket.socket.connect
        connect_ex: Callable[..., Any] = socket.socket.connect_ex
        sendto: Callable[..., Any] = socket.socket.sendto
        sendmsg: Callable[..., Any] = socket.socket.sendmsg

        def checked_connect(self: socket.socket, address: Any) -> Any:
            return connect(self, _vetted(self, address))

        def checked_connect_ex(self: socket.socket, address: Any) -> Any:
            return connect_ex(self, _vetted(self, address))

        def checked_sendto(self: socket.socket, data: Any, *args: Any) -> Any:
            # sendto(data, address) or sendto(data, flags, address)
            if args:
                args = (*args[:-1], _vetted(self, args[-1]))
            return sendto(self, data, *args)

        def checked_sendmsg(self: socket.socket, buffers: Any, *args: Any) -> Any:
            # sendmsg(buffers[, ancdata[, flags[, address]]])
            if len(args) >= 3 and args[2] is not None:
                args = (*args[:2], _vetted(self, args[2]), *args[3:])
            return sendmsg(self, buffers, *args)

        checked_connect._sigwatch_checked = True  # type: ignore[attr-defined]
        for name, method in (
            ("connect", checked_connect),
            ("connect_ex", checked_connect_ex),
            ("sendto", checked_sendto),
            ("sendmsg", checked_sendmsg),
        ):
            setattr(socket.socket, name, method)
