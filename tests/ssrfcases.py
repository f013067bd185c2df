"""Shared SSRF test material: the hosts the guard must refuse, a stub resolver and a socket spy.

Nothing here lets a test send a packet beyond loopback. The resolver answers only the ``.test``
names it is given and numeric hosts (``AI_NUMERICHOST``: no DNS query leaves the machine), and
the spy refuses, without connecting, every connect or datagram to a non-loopback address. The
spy is installed *under* the guard (sigwatch's socket checks wrap whatever ``socket.socket``
methods they find), so it records only what the guard let through: a refused destination leaves
``spy.attempts`` empty.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

#: Where the "inside" names resolve to; a test may run a server on 127.0.0.2 to catch leaks.
INSIDE = {
    "inside.test": ["127.0.0.2"],
    "metadata.test": ["169.254.169.254"],
    "v6inside.test": ["fd00::1"],
    "mixed.test": ["169.254.169.254", "fe80::1"],
    "localhost": ["127.0.0.1"],  # as /etc/hosts has it, without depending on this machine's
}


@dataclass(frozen=True)
class BadHost:
    """A host as written in a URL, and the address the guard must name when refusing it."""

    host: str
    address: str
    what: str

    def __str__(self) -> str:
        return f"{self.what}:{self.host}"


def _bad(host: str, what: str, address: str | None = None) -> BadHost:
    literal = host.strip("[]")
    return BadHost(host, address or str(ipaddress.ip_address(literal)), what)


#: Every spelling of a non-public destination the guard must refuse, pointing at 127.0.0.2 where
#: the form allows, so a server there would see any connection that slipped through.
BAD_HOSTS: Sequence[BadHost] = (
    _bad("127.0.0.2", "loopback"),
    _bad("2130706434", "decimal", "127.0.0.2"),
    _bad("0x7f000002", "hex", "127.0.0.2"),
    _bad("0x7f.2", "hex-short", "127.0.0.2"),
    _bad("0177.0.0.2", "octal", "127.0.0.2"),
    _bad("017700000002", "octal-whole", "127.0.0.2"),
    _bad("127.2", "short", "127.0.0.2"),
    _bad("10.1", "short-private", "10.0.0.1"),
    _bad("0", "zero", "0.0.0.0"),
    _bad("0.0.0.0", "unspecified"),
    _bad("[::]", "unspecified-v6"),
    _bad("[::1]", "loopback-v6"),
    _bad("[::ffff:127.0.0.2]", "v4-mapped"),
    _bad("[::ffff:7f00:2]", "v4-mapped-hex"),
    _bad("[::ffff:a9fe:a9fe]", "v4-mapped-metadata"),
    _bad("[::127.0.0.2]", "v4-compatible"),
    _bad("[64:ff9b::a9fe:a9fe]", "nat64"),
    _bad("[64:ff9b::7f00:2]", "nat64-loopback"),
    _bad("[2002:a9fe:a9fe::]", "6to4"),
    _bad("[2002:7f00:2::]", "6to4-loopback"),
    _bad("169.254.169.254", "link-local"),
    _bad("[fe80::1]", "link-local-v6"),
    _bad("[fd00::1]", "unique-local"),
    _bad("[fc00::1]", "unique-local-fc"),
    _bad("[fec0::1]", "site-local"),
    _bad("100.64.0.1", "cgnat"),
    _bad("10.0.0.1", "private-10"),
    _bad("172.16.0.1", "private-172"),
    _bad("192.168.1.1", "private-192"),
    _bad("224.0.0.1", "multicast"),
    _bad("[ff02::1]", "multicast-v6"),
    _bad("255.255.255.255", "broadcast"),
    _bad("240.0.0.1", "reserved"),
    _bad("inside.test", "name-loopback", "127.0.0.2"),
    _bad("metadata.test", "name-metadata", "169.254.169.254"),
    _bad("v6inside.test", "name-unique-local", "fd00::1"),
    _bad("mixed.test", "name-all-inside", "169.254.169.254"),
)


def _fabricated(host: str, port: Any, family: int, type_: int, addresses: Sequence[str]) -> list:
    number = int(port) if port not in (None, "") else 0
    results = []
    for text in addresses:
        ip = ipaddress.ip_address(text)
        af = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        if family not in (0, socket.AF_UNSPEC, af):
            continue
        kind = type_ or socket.SOCK_STREAM
        proto = socket.IPPROTO_UDP if kind == socket.SOCK_DGRAM else socket.IPPROTO_TCP
        sockaddr = (text, number, 0, 0) if af == socket.AF_INET6 else (text, number)
        results.append((af, kind, proto, "", sockaddr))
    if not results:
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: no address of that family")
    return results


def stub_resolver(
    monkeypatch: pytest.MonkeyPatch,
    names: Mapping[str, Any] | None = None,
    *,
    every_other_name: Sequence[str] | None = None,
) -> dict[str, int]:
    """Answer ``names`` (default :data:`INSIDE`) and numeric hosts; refuse every other lookup.

    With ``every_other_name``, any other name resolves to those addresses instead (so a
    service's fixed API host, api.telegram.org say, can be made to point inside).

    Returns a count of lookups per name. ``names`` may map a name to a callable taking the
    lookup's number (1, 2, ...) to tell a rebinding name's answers apart.
    """
    answers = dict(INSIDE if names is None else names)
    real = socket.getaddrinfo
    lookups: dict[str, int] = {}

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                    flags: int = 0) -> list:  # fmt: skip
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in answers or name.rstrip(".") in answers:
            key = name.rstrip(".")
            lookups[key] = lookups.get(key, 0) + 1
            found = answers[key]
            addresses = found(lookups[key]) if callable(found) else found
            return _fabricated(name, port, family, type, addresses)
        # Numeric forms only (inet_aton's decimal, hex, octal and short forms included):
        # anything else would be a real DNS query, which tests must not make.
        try:
            return real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            if every_other_name is None or host is None:
                raise
            lookups[name] = lookups.get(name, 0) + 1
            return _fabricated(name, port, family, type, every_other_name)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


@dataclass
class SocketSpy:
    """Every connect or datagram destination the guard let through, in order."""

    attempts: list[tuple[str, Any]] = field(default_factory=list)

    def destinations(self) -> list[str]:
        """The IP (or name) of each attempt."""
        return [str(address[0]) if isinstance(address, tuple) else str(address)
                for _, address in self.attempts]  # fmt: skip


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple):
        return False
    try:
        return ipaddress.ip_address(str(address[0]).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def spy_on_sockets(monkeypatch: pytest.MonkeyPatch) -> SocketSpy:
    """Record every socket destination; refuse non-loopback ones without sending anything."""
    spy = SocketSpy()
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
    sendto, sendmsg = socket.socket.sendto, socket.socket.sendmsg

    def guard(method: str, address: Any) -> None:
        spy.attempts.append((method, address))
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"test spy: {address!r} is beyond loopback")

    def spy_connect(self: socket.socket, address: Any) -> Any:
        guard("connect", address)
        return connect(self, address)

    def spy_connect_ex(self: socket.socket, address: Any) -> Any:
        guard("connect_ex", address)
        return connect_ex(self, address)

    def spy_sendto(self: socket.socket, data: Any, *args: Any) -> Any:
        guard("sendto", args[-1])
        return sendto(self, data, *args)

    def spy_sendmsg(self: socket.socket, buffers: Any, *args: Any) -> Any:
        if len(args) >= 3 and args[2] is not None:
            guard("sendmsg", args[2])
        return sendmsg(self, buffers, *args)

    monkeypatch.setattr(socket.socket, "connect", spy_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", spy_connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", spy_sendto)
    monkeypatch.setattr(socket.socket, "sendmsg", spy_sendmsg)
    return spy
