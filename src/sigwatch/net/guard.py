"""The SSRF guard: which addresses sources may reach, enforced when a connection is opened.

The check runs inside httpcore's network backend, after DNS resolution and right before the TCP
connect, and the socket is opened to the very IP literal that passed the check. Checking the URL's
host name earlier would let DNS rebinding (a name that resolves to a public address when checked and
to 127.0.0.1 when connected) slip through; checking here does not.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable, Sequence

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


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination (e.g. ``"loopback"``), or None if it is."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv6 socket reaches the embedded IPv4 address of these forms, so judge that one.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None:
            return blocked_reason(embedded)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
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
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
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
        f"refused to connect to {where}: it is {article} {reason} address and sources may only "
        f"fetch public ones; {ALLOW_HINT}"
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
