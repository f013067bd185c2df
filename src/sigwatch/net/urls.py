"""A web address in one canonical spelling, so one address written two ways is seen as one."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalised_url(url: str) -> str:
    """``url`` with scheme and host lower-cased, the default port and the fragment dropped, an
    empty path made ``/`` and a trailing slash removed from any longer path; the query is kept.

    ``https://News.Example:443/feed/#top`` and ``https://news.example/feed`` are one address.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    path = parts.path or "/"
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return urlunsplit((scheme, host, path, parts.query, ""))
