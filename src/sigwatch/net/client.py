"""The one outbound HTTP client: a timeout, a size cap and the SSRF guard on every request.

Every request also passes the host's circuit breaker and rate limits (:mod:`sigwatch.net.hosts`)
when the client has a :class:`~sigwatch.net.hosts.HostGate`, as clients built from settings do.

Redirects are followed here, one hop at a time, so each hop's destination goes through the guard
and the scheme check again; httpx's own redirect following is switched off.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import structlog

from sigwatch.config import Settings
from sigwatch.errors import (
    BlockedAddress,
    FetchError,
    HostUnavailable,
    HTTPStatusError,
    NetworkError,
    SigwatchError,
    TransportError,
)
from sigwatch.net.guard import AddressPolicy, guarded_transport
from sigwatch.net.hosts import HostGate, KeySpace, host_key
from sigwatch.net.retry_after import (
    describe_wait,
    parse_rate_limit_reset,
    parse_retry_after,
    rate_limit_exhausted,
)

log = structlog.get_logger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers a caller may attach for one origin that must not follow a redirect to another.
_ORIGIN_BOUND_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_SECRET_NAME = re.compile(
    r"token|key|secret|passw|pwd|auth|sig|session|credential|bearer|jwt|hash|code", re.I
)


@dataclass(frozen=True, slots=True)
class FetchedResponse:
    """An answer: final URL, status, headers and body (``get`` returns only 2xx and 304)."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes


@dataclass(slots=True)
class _Hop:
    """Where a fetch is in its redirects, and which host's gate it last passed."""

    url: httpx.URL
    admitted: str = ""

    @property
    def key(self) -> str:
        return host_key(self.url)


def host_failed(status: int) -> bool:
    """True when an answer with this status counts toward opening the host's breaker.

    Only a server in trouble does (5xx, 408): a 401 or 404 is about one source, and a 429 is a
    host that works and asks for patience, which its Retry-After already buys.
    """
    return status >= 500 or status == 408


class OutboundClient:
    """Fetches URLs with a timeout, a response-size cap, checked redirects and the SSRF guard."""

    def __init__(
        self,
        *,
        timeout_s: float,
        max_response_bytes: int,
        max_redirects: int,
        user_agent: str,
        allow_private: bool = False,
        allowed_networks: Sequence[str] = (),
        transport: httpx.AsyncBaseTransport | None = None,
        hosts: HostGate | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        #: The per-host breakers and rate limits every request passes; None: no such layer.
        self.hosts = hosts
        #: Sent with every request; robots.txt rules are matched against it.
        self.user_agent = user_agent
        self.max_response_bytes = max_response_bytes
        self.max_redirects = max_redirects
        # A transport passed in stands for a service beyond this machine (tests with recorded
        # responses), so the guard, which only makes sense for real sockets, is not installed.
        #: The SSRF policy, for code that must open its own connections (Apprise); None when a
        #: transport was passed in.
        self.address_policy: AddressPolicy | None = None
        if transport is None:
            policy = AddressPolicy(allow_private=allow_private, allowed_networks=allowed_networks)
            self.address_policy = policy
            transport = guarded_transport(policy)
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            # No proxies or .netrc from the environment: a proxy would be dialled instead of the
            # checked address, and credentials must not be attached behind the operator's back.
            trust_env=False,
            headers={"User-Agent": user_agent},
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundClient:
        """Build the client from the fetch settings (timeout, size cap, redirects, guard), with
        the per-host breakers and rate limits (shared through Redis when it is configured)."""
        return cls(
            timeout_s=settings.fetch_timeout_s,
            max_response_bytes=settings.max_response_bytes,
            max_redirects=settings.max_redirects,
            user_agent=settings.user_agent,
            allow_private=settings.allow_private_urls,
            allowed_networks=settings.allowed_private_networks,
            # A half-open trial that has not reported within a fetch's time died with its worker.
            hosts=HostGate.from_settings(settings, trial_s=settings.fetch_timeout_s + 5),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close pooled connections; the client cannot be used afterwards."""
        await self._client.aclose()
        if self.hosts is not None:
            await self.hosts.aclose()

    async def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        secret_headers: Iterable[str] = (),
    ) -> FetchedResponse:
        """GET ``url`` following redirects; return 2xx/304 answers, raise FetchError otherwise.

        An error status raises HTTPStatusError (with the server's Retry-After and rate-limit
        reset), no answer at all TransportError, both retryable or not as their status says.
        Credentials (Authorization, Cookie) and the headers named in ``secret_headers`` (an API
        key header, say) are not sent on when a redirect leads to another origin.
        """
        bound = _ORIGIN_BOUND_HEADERS | {name.lower() for name in secret_headers}
        sent = dict(headers or {})
        hop = _Hop(_checked_url(url))
        # The first host's breaker and rate limit are passed before the timeout starts: a wait
        # for a free slot is not the server being slow.
        await self._admit(hop.url, sent, space="source")
        hop.admitted = hop.key
        try:
            # httpx's timeout bounds each connect/read; this bounds the whole fetch, so a server
            # that trickles a byte every few seconds cannot hold a worker forever.
            async with asyncio.timeout(self.timeout_s):
                return await self._follow(url, sent, bound, hop)
        except TimeoutError:
            await self._record(hop.key, ok=False, space="source")
            raise self._timeout_error(url) from None

    async def post(
        self, url: str, *, content: bytes, headers: Mapping[str, str] | None = None
    ) -> FetchedResponse:
        """POST ``content`` to ``url`` and return the answer whatever its status.

        Redirects are returned, not followed: re-sending a signed body to wherever a 3xx points
        is the receiver's configuration error to fix, not the sender's to guess. Timeouts,
        connection failures (TransportError), refused destinations (BlockedAddress) and oversize
        answers (FetchError) raise.
        """
        target = _checked_url(url)
        shown = redact_url(url)
        await self._admit(target, {}, space="delivery")
        try:
            response = await self._post(target, shown, content, headers)
        except NetworkError:  # raised only for no answer at all: the receiver's host is down
            await self._record(host_key(target), ok=False, space="delivery")
            raise
        await self._record(host_key(target), ok=not host_failed(response.status), space="delivery")
        return response

    async def _post(
        self,
        target: httpx.URL,
        shown: str,
        content: bytes,
        headers: Mapping[str, str] | None,
    ) -> FetchedResponse:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._client.stream(
                    "POST", target, content=content, headers=dict(headers or {})
                ) as response:
                    log.debug(
                        "outbound request",
                        method="POST",
                        url=shown,
                        status=response.status_code,
                        duration_ms=round((time.monotonic() - started) * 1000),
                    )
                    body = await self._read_capped(response, shown)
                    return FetchedResponse(
                        url=str(response.url),
                        status=response.status_code,
                        headers=response.headers,
                        body=body,
                    )
        except BlockedAddress:
            log.debug("outbound request refused", method="POST", url=shown, error="blocked")
            raise
        except SigwatchError:
            raise
        except (TimeoutError, httpx.HTTPError) as exc:
            raise _network_error(
                exc, method="POST", shown=shown, host=target.host, timeout_s=self.timeout_s
            ) from None

    async def _follow(
        self,
        url: str,
        headers: dict[str, str],
        origin_bound: frozenset[str] | set[str],
        hop: _Hop,
    ) -> FetchedResponse:
        current = hop.url
        for redirects in range(self.max_redirects + 1):
            hop.url = current
            if hop.key != hop.admitted:  # a redirect to another host passes its gate too
                await self._admit(current, headers, space="source")
                hop.admitted = hop.key
            try:
                next_url = await self._request(current, headers)
            except BlockedAddress:
                raise  # nothing was sent
            except HTTPStatusError as exc:
                await self._record(hop.key, ok=not host_failed(exc.status), space="source")
                raise
            except NetworkError:  # no answer at all
                await self._record(hop.key, ok=False, space="source")
                raise
            except FetchError:
                await self._record(hop.key, ok=True, space="source")  # it answered, oddly
                raise
            await self._record(hop.key, ok=True, space="source")
            if isinstance(next_url, FetchedResponse):
                return next_url
            if redirects == self.max_redirects:
                break
            if (next_url.scheme, next_url.host, next_url.port) != (
                current.scheme,
                current.host,
                current.port,
            ):
                headers = {k: v for k, v in headers.items() if k.lower() not in origin_bound}
            current = next_url
        raise FetchError(
            f"too many redirects fetching {redact_url(url)}: stopped after {self.max_redirects} "
            "(a redirect loop?); use the final URL directly or raise SIGWATCH_MAX_REDIRECTS"
        )

    async def _admit(self, url: httpx.URL, headers: Mapping[str, str], *, space: KeySpace) -> None:
        """Pass the host's breaker (and, for fetches, its rate limits), or raise with a wait."""
        if self.hosts is None:
            return
        try:
            await self.hosts.admit(host_key(url), space=space, headers=headers)
        except HostUnavailable as exc:
            log.debug("outbound request held", url=redact_url(str(url)), error=type(exc).__name__)
            raise

    async def _record(self, key: str, *, ok: bool, space: KeySpace) -> None:
        if self.hosts is not None:
            await self.hosts.record(key, ok=ok, space=space)

    async def _request(
        self, url: httpx.URL, headers: dict[str, str]
    ) -> FetchedResponse | httpx.URL:
        """One hop: the final answer, or the URL a redirect points to."""
        shown = redact_url(str(url))
        started = time.monotonic()
        try:
            async with self._client.stream("GET", url, headers=headers) as response:
                log.debug(
                    "outbound request",
                    method="GET",
                    url=shown,
                    status=response.status_code,
                    duration_ms=round((time.monotonic() - started) * 1000),
                )
                status = response.status_code
                if status in REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError(
                            f"HTTP {status} redirect without a Location header from {shown}: "
                            "use the final URL of the feed instead"
                        )
                    try:
                        return _checked_url(url.join(location.strip()))
                    except httpx.InvalidURL as exc:
                        raise FetchError(
                            f"{shown} redirected to an invalid URL ({exc}): "
                            "use the final URL of the feed instead"
                        ) from None
                if not (200 <= status < 300 or status == 304):
                    raise status_error(status, response.reason_phrase, response.headers, shown)
                body = await self._read_capped(response, shown)
                return FetchedResponse(
                    url=str(response.url), status=status, headers=response.headers, body=body
                )
        except BlockedAddress:
            log.debug("outbound request refused", method="GET", url=shown, error="blocked")
            raise
        except SigwatchError:
            raise
        except httpx.TimeoutException:
            log.debug("outbound request failed", method="GET", url=shown, error="timeout")
            raise self._timeout_error(str(url)) from None
        except httpx.HTTPError as exc:
            raise _network_error(
                exc, method="GET", shown=shown, host=url.host, timeout_s=self.timeout_s
            ) from None

    async def _read_capped(self, response: httpx.Response, shown: str) -> bytes:
        cap = self.max_response_bytes
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            raise FetchError(
                f"response from {shown} is {int(declared):,} bytes, over the limit of {cap:,}: "
                "raise SIGWATCH_MAX_RESPONSE_BYTES if this source is meant to be that large"
            )
        chunks: list[bytes] = []
        received = 0
        # Read as it arrives and stop at the cap: a missing or lying Content-Length (chunked
        # encoding, compression) must not let a server fill memory.
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received > cap:
                raise FetchError(
                    f"response from {shown} exceeded the limit of {cap:,} bytes; stopped reading: "
                    "raise SIGWATCH_MAX_RESPONSE_BYTES if this source is meant to be that large"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _timeout_error(self, url: str) -> TransportError:
        return TransportError(
            f"timed out after {self.timeout_s:g}s fetching {redact_url(url)}: the server is slow "
            "or unreachable; raise SIGWATCH_FETCH_TIMEOUT_S if it is merely slow"
        )


def _network_error(
    exc: Exception, *, method: str, shown: str, host: str, timeout_s: float
) -> TransportError:
    """Log a failed request and say what went wrong and what to check, for GET or POST."""
    peer = "receiver" if method == "POST" else "server"
    doing = f"posting to {shown}" if method == "POST" else f"fetching {shown}"
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        log.debug("outbound request failed", method=method, url=shown, error="timeout")
        return TransportError(
            f"timed out after {timeout_s:g}s {doing}: the {peer} is slow or unreachable; "
            "it should answer quickly and do slow work afterwards"
        )
    if isinstance(exc, httpx.ConnectError):
        log.debug("outbound request failed", method=method, url=shown, error="connect")
        return TransportError(
            f"could not connect to {host} {doing} ({_reason(exc)}): check the host name and "
            f"that the {peer} is up"
        )
    log.debug("outbound request failed", method=method, url=shown, error=type(exc).__name__)
    retry = "" if method == "POST" else "; sigwatch tries again at the next poll"
    return TransportError(
        f"network error {doing} ({_reason(exc)}): the {peer} sent a broken answer or closed "
        f"the connection{retry}"
    )


def _checked_url(url: str | httpx.URL) -> httpx.URL:
    """Parse ``url`` and refuse anything but absolute http(s) URLs."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchError(f"invalid URL {redact_url(str(url))}: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise FetchError(
            f"unsupported URL scheme {parsed.scheme or '(none)'!r} in {redact_url(str(url))}: "
            "sigwatch fetches only http:// and https:// URLs"
        )
    if not parsed.host:
        raise FetchError(f"URL {redact_url(str(url))} has no host name: give a full http(s) URL")
    return parsed


def status_error(
    status: int, reason: str, headers: Mapping[str, str], shown: str
) -> HTTPStatusError:
    """The error for an error answer: its status, the waits it asks for, and how to fix it.

    ``headers`` must look names up case-insensitively (``httpx.Headers`` does).
    """
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "(unknown status)"
    facts: dict[str, Any] = {
        "status": status,
        "retry_after_s": parse_retry_after(headers.get("retry-after")),
        "rate_limit_reset_s": parse_rate_limit_reset(headers),
        "rate_limit_exhausted": rate_limit_exhausted(headers),
    }
    # The hint depends on what the error class concludes from the facts (retryable, wait).
    hint = _status_hint(HTTPStatusError("", **facts))
    return HTTPStatusError(f"HTTP {status} {reason} from {shown}: {hint}", **facts)


def _status_hint(error: HTTPStatusError) -> str:
    """What the status means for the user, and what to do about it."""
    status, wait_s = error.status, error.wait_s
    asked = f" and asked to wait {describe_wait(wait_s)}" if wait_s is not None else ""
    if error.rate_limited:
        waits = "that long" if wait_s is not None else "longer each time"
        return (
            f"the server is rate-limiting sigwatch{asked}; sigwatch waits {waits} before "
            "polling again; raise this source's poll interval if it keeps happening"
        )
    if error.retryable:
        return f"the server failed{asked}; sigwatch tries again later"
    if status == 401:
        return (
            "the server wants credentials: set a credential for this source "
            "(or correct the one it has), or check the URL"
        )
    if status == 403:
        return (
            "the server refused access: check the URL, and whether the site needs a credential "
            "or blocks automated clients"
        )
    if status == 404:
        return "nothing is there: check the URL, or give the source its new one"
    if status == 410:
        return (
            "the server says this is gone for good: check the URL, give the source its new one "
            "or remove the source"
        )
    return "the server rejected the request: check the URL and the source's options"


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _looks_like_token(value: str) -> bool:
    """True for long strings mixing upper case, lower case and digits, as keys and tokens do."""
    return (
        len(value) >= 24
        and any(c.isdigit() for c in value)
        and any(c.isupper() for c in value)
        and any(c.islower() for c in value)
    )


def url_problem(url: str) -> str | None:
    """Why the outbound client could never request ``url``, or None when it can.

    Checked where users give URLs, so a URL no request can be made to (``http://0177.0.0.2/``)
    is refused at once instead of failing at every poll or send.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        return f"is not a URL sigwatch can request: {exc}"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "must be an absolute http:// or https:// URL"
    return None


def redact_url(url: str) -> str:
    """``url`` without user info, and with secret-looking path parts and query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    netloc = parts.netloc.rpartition("@")[2]
    path = "/".join(
        "REDACTED" if _looks_like_token(segment) else segment for segment in parts.path.split("/")
    )
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [
                (
                    name,
                    "REDACTED" if _SECRET_NAME.search(name) or _looks_like_token(value) else value,
                )
                for name, value in pairs
            ],
            safe="/:,",
        )
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))
