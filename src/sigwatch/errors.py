"""The one exception hierarchy of sigwatch.

::

    SigwatchError
    ├── ConfigError            the deployment is wrong: a setting is missing or unsafe
    ├── SourceError            a source could not be collected
    │   ├── FetchError         no usable answer (bad URL, redirect loop, oversize body)
    │   │   ├── BlockedAddress the SSRF guard refused the destination
    │   │   └── NetworkError   the exchange with the server failed; ``retryable`` says if a
    │   │       │              later try may succeed
    │   │       ├── TransportError  no HTTP answer: timeout, DNS, TLS, refused connection
    │   │       ├── HTTPStatusError the server answered an error status (``status``,
    │   │       │                   ``retry_after_s``, ``rate_limit_reset_s``)
    │   │       └── HostUnavailable sigwatch held the request back (``wait_s``)
    │   │           ├── CircuitOpen      the host's circuit breaker is open
    │   │           └── HostRateLimited  the per-host or per-credential limit is spent
    │   └── ParseError         the body could not be understood
    ├── DeliveryError          a notification could not be delivered
    │   ├── TransientDeliveryError  worth retrying later (timeout, 5xx, 429)
    │   └── PermanentDeliveryError  retrying cannot help (bad credentials, 4xx, bad config)
    ├── InvalidInput           a field of the caller's input is wrong (names the field)
    │   └── InvalidOptions     a source's or channel's options do not fit its kind
    ├── NotFound               an id names nothing
    ├── Conflict               the change clashes with existing data
    ├── AuthError              credentials are missing or wrong
    ├── Forbidden              the role does not allow this
    └── DatabaseOutOfDate      the schema is behind the code

Who fixes it decides the branch: ``InvalidInput`` is the caller's to fix (the API answers 422
naming the field), ``ConfigError`` the operator's (a setting of the deployment), and a network
error nobody's but time's when it is ``retryable``. Every message says what failed and how to
fix it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Statuses a later retry of the same request may succeed on: timeout, too early, rate limit,
# and every server-side failure.
_RETRYABLE_STATUSES = frozenset({408, 425, 429})


class SigwatchError(Exception):
    """Base of every error sigwatch raises on purpose."""


class ConfigError(SigwatchError):
    """A setting of the deployment is missing, malformed or unsafe: the operator must fix it."""


class SourceError(SigwatchError):
    """A source could not be collected; the message is stored on the source."""


class FetchError(SourceError):
    """The fetch gave no usable answer: bad URL, redirect loop, oversize body, network failure."""


class BlockedAddress(FetchError):
    """The SSRF guard refused a private, loopback or link-local destination."""


class NetworkError(FetchError):
    """The exchange with the server failed; ``retryable`` is True when a later try may succeed."""

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed later, without anyone changing anything."""
        return True

    @property
    def wait_s(self) -> float | None:
        """Seconds to wait before trying again, when known; a schedule honours it."""
        return None


class TransportError(NetworkError):
    """No HTTP answer came (timeout, DNS failure, TLS failure, refused or dropped connection).

    Always retryable: the server or the path to it may be back at the next try.
    """


class HTTPStatusError(NetworkError):
    """The server answered with an error status.

    ``retry_after_s`` is the server's Retry-After and ``rate_limit_reset_s`` the seconds until
    its rate-limit window resets, both counted from when the answer arrived (None when not
    given or unreadable). ``rate_limited`` is True for 429, and for a 403 that says no requests
    remain in the window (as GitHub sends). A schedule honours :attr:`wait_s`.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        retry_after_s: float | None = None,
        rate_limit_reset_s: float | None = None,
        rate_limit_exhausted: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s
        self.rate_limit_reset_s = rate_limit_reset_s
        self.rate_limited = status == 429 or (status == 403 and rate_limit_exhausted)

    @property
    def retryable(self) -> bool:
        """True for 408, 425, 429, a rate-limited 403 and every 5xx: a later try may succeed."""
        return self.status in _RETRYABLE_STATUSES or self.status >= 500 or self.rate_limited

    @property
    def wait_s(self) -> float | None:
        """The longest wait the server asked for: Retry-After, or the reset when rate-limited.

        A rate-limit reset is only a wait when the answer is a rate-limit refusal: many APIs
        send the reset header on every answer, and a 500 is no reason to wait for the window.
        """
        asked = [self.retry_after_s] if self.retry_after_s is not None else []
        if self.rate_limited and self.rate_limit_reset_s is not None:
            asked.append(self.rate_limit_reset_s)
        return max(asked) if asked else None


class HostUnavailable(NetworkError):
    """sigwatch held a request back without sending it; :attr:`wait_s` says for how long.

    Always retryable: the hold ends by itself. No request reached the server, so it neither
    counts toward the host's circuit breaker nor against the server's own limits.
    """

    def __init__(self, message: str, *, host: str, wait_s: float) -> None:
        super().__init__(message)
        self.host = host
        self._wait_s = max(0.0, wait_s)

    @property
    def wait_s(self) -> float:
        """Seconds until the hold on this host ends."""
        return self._wait_s


class CircuitOpen(HostUnavailable):
    """The host failed too often in a row; requests to it fail at once until it is tried again."""


class HostRateLimited(HostUnavailable):
    """sigwatch's own per-host or per-credential rate limit has no request left for now."""


class ParseError(SourceError):
    """The body was fetched but could not be parsed into posts."""


class SourcePaused(SourceError):
    """No retry can fix this fetch (credentials refused, an account gone): the worker pauses
    the source, keeping this message as its error, until a person edits and resumes it."""


class DeliveryError(SigwatchError):
    """A notification could not be delivered to a channel; the message is kept on the delivery."""


class TransientDeliveryError(DeliveryError):
    """The channel failed in a way worth retrying; ``retry_after_s`` is the receiver's own ask."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentDeliveryError(DeliveryError):
    """The channel refused in a way no retry can fix: the user must change the channel."""


class InvalidInput(SigwatchError):
    """A field of the caller's input is invalid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class OptionProblem:
    """One bad option: where it is inside the options, what is wrong, and pydantic's type name.

    ``location`` is a tuple of keys (``("url",)``, ``("headers", "Authorization")``); the
    message never quotes the submitted value, which may be a secret.
    """

    location: tuple[str | int, ...]
    message: str
    type: str = "value_error"


class InvalidOptions(InvalidInput):
    """A source's or channel's options do not fit its kind; each problem names its option.

    ``field`` is the first problem's location dotted under ``config`` (``config.url``), so a
    handler that shows one field still points at the right one; ``problems`` lists them all.
    """

    def __init__(
        self, kind: str, problems: Sequence[OptionProblem], *, what: str = "source"
    ) -> None:
        if not problems:
            raise ValueError("InvalidOptions needs at least one problem")
        self.kind = kind
        self.problems = tuple(problems)
        summary = "; ".join(
            f"{_dotted(problem.location) or '(options)'}: {problem.message}"
            for problem in self.problems
        )
        super().__init__(
            ".".join(["config", *(str(part) for part in self.problems[0].location)]),
            f"invalid {kind} {what} options: {summary}",
        )

    @classmethod
    def from_validation_errors(
        cls, kind: str, errors: Sequence[Mapping[str, Any]], *, what: str = "source"
    ) -> InvalidOptions:
        """The error for pydantic's ``ValidationError.errors()``, keeping only where and why.

        Call ``errors(include_input=False)`` and scrub secret values from the messages first:
        a pydantic message may quote the input.
        """
        problems = [
            OptionProblem(
                tuple(error.get("loc", ())),
                str(error.get("msg", "")),
                str(error.get("type", "value_error")),
            )
            for error in errors
        ]
        return cls(kind, problems or [OptionProblem((), "the options are invalid")], what=what)


def _dotted(location: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in location)


class NotFound(SigwatchError):
    """The requested object does not exist (or is not visible to the caller)."""


class Conflict(SigwatchError):
    """The change clashes with existing data, such as a duplicate name."""


class AuthError(SigwatchError):
    """Credentials are missing, expired or wrong."""


class Forbidden(SigwatchError):
    """The caller is authenticated but the role does not allow the action."""


class DatabaseOutOfDate(SigwatchError):
    """The database schema is not at the revision this code expects."""
