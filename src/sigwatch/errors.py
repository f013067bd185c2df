"""The one exception hierarchy of sigwatch.

::

    SigwatchError
    ├── ConfigError            a setting is missing or unsafe
    ├── SourceError            a source could not be collected
    │   ├── FetchError         the network answer was unusable (timeout, status, size)
    │   │   └── BlockedAddress the SSRF guard refused the destination
    │   └── ParseError         the body could not be understood
    ├── DeliveryError          a notification could not be delivered
    │   ├── TransientDeliveryError  worth retrying later (timeout, 5xx, 429)
    │   └── PermanentDeliveryError  retrying cannot help (bad credentials, 4xx, bad config)
    ├── InvalidInput           a request field is wrong (names the field)
    ├── NotFound               an id names nothing
    ├── Conflict               the change clashes with existing data
    ├── AuthError              credentials are missing or wrong
    ├── Forbidden              the role does not allow this
    └── DatabaseOutOfDate      the schema is behind the code

Every message says what failed and how to fix it.
"""

from __future__ import annotations


class SigwatchError(Exception):
    """Base of every error sigwatch raises on purpose."""


class ConfigError(SigwatchError):
    """A setting is missing, malformed or unsafe."""


class SourceError(SigwatchError):
    """A source could not be collected; the message is stored on the source."""


class FetchError(SourceError):
    """The fetch failed: timeout, connection error, bad status or oversize body."""


class BlockedAddress(FetchError):
    """The SSRF guard refused a private, loopback or link-local destination."""


class ParseError(SourceError):
    """The body was fetched but could not be parsed into posts."""


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
