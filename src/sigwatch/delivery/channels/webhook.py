"""Webhooks signed per the Standard Webhooks specification (https://www.standardwebhooks.com).

Each delivery is a JSON POST with three headers: ``webhook-id`` (the message's idempotency key,
the same on every retry so receivers can drop repeats), ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: ``v1,`` then base64 of HMAC-SHA256 over ``{id}.{timestamp}.{body}`` keyed
with the secret's bytes. Secrets are written ``whsec_`` + base64, as the specification suggests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from sigwatch.delivery.channels.base import DeliveryReceipt, error_for_answer
from sigwatch.delivery.message import AlertMessage
from sigwatch.errors import (
    BlockedAddress,
    FetchError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from sigwatch.net.client import OutboundClient, redact_url, url_problem

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300.0
# The specification recommends secrets of 24 to 64 random bytes.
_MIN_SECRET_BYTES = 24
_MAX_SECRET_BYTES = 64


def generate_webhook_secret() -> str:
    """A new random signing secret in the ``whsec_`` + base64 form (32 bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_bytes(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret stands for; ValueError when it is not valid base64."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret is not base64 after its whsec_ prefix") from None


def sign_webhook(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for ``body`` sent as ``webhook_id`` at ``timestamp``.

    Raises ValueError when ``secret`` is not base64 after its ``whsec_`` prefix.
    """
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True when ``body`` carries a valid signature by ``secret`` and a fresh timestamp.

    ``headers`` may use any case. The timestamp must lie within ``tolerance_s`` of ``now``
    (default: the clock), which stops an attacker replaying a captured request later.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    webhook_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    if not webhook_id or not (stamp.isascii() and stamp.isdigit()) or not signatures:
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance_s:
        return False
    try:
        expected = sign_webhook(secret, webhook_id, int(stamp), body)
    except ValueError:
        return False
    # The header may list several space-separated signatures (one per secret during rotation).
    return any(
        hmac.compare_digest(candidate.encode(), expected.encode())
        for candidate in signatures.split()
    )


class WebhookOptions(BaseModel):
    """A webhook channel: where to POST, and the secret that signs each request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: SecretStr = Field(description="The receiver's http(s) URL; it may embed a token.")
    secret: SecretStr = Field(
        default_factory=lambda: SecretStr(generate_webhook_secret()),
        description="Signing secret, whsec_ + base64 of 24 to 64 bytes; generated when omitted.",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value().strip()
        try:
            parts = urlsplit(url)
        except ValueError:
            raise ValueError("is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL")
        problem = url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        return SecretStr(url)

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value().strip()
        if not secret.startswith(SECRET_PREFIX):
            raise ValueError(f"must start with {SECRET_PREFIX} followed by base64")
        size = len(secret_bytes(secret))
        if not _MIN_SECRET_BYTES <= size <= _MAX_SECRET_BYTES:
            raise ValueError(
                f"must encode {_MIN_SECRET_BYTES} to {_MAX_SECRET_BYTES} random bytes, "
                f"not {size}; omit it to have one generated"
            )
        return SecretStr(secret)


class WebhookChannel:
    """POSTs each alert as signed JSON to the user's endpoint through the outbound client."""

    kind: ClassVar[str] = "webhook"
    Options: ClassVar[type[BaseModel]] = WebhookOptions

    def __init__(
        self,
        options: WebhookOptions,
        client: OutboundClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = options.url.get_secret_value()
        self._secret = options.secret.get_secret_value()
        self._client = client
        self._clock = clock
        # Webhook paths often hold the token (Slack, Discord, …), so messages name the origin.
        parts = urlsplit(self._url)
        self._where = f"webhook {parts.scheme}://{parts.netloc.rpartition('@')[2]}"

    async def send(self, message: AlertMessage) -> DeliveryReceipt:
        """POST ``message`` signed; any 2xx is a delivery, anything else raises DeliveryError."""
        body = message.to_json().encode()
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message.idempotency_key,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_webhook(
                self._secret, message.idempotency_key, timestamp, body
            ),
        }
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except BlockedAddress as exc:
            raise PermanentDeliveryError(f"{self._where} refused: {exc}") from None
        except FetchError as exc:
            # The client names the URL as redact_url shows it; only the origin may be shown.
            reason = str(exc).replace(redact_url(self._url), self._where.removeprefix("webhook "))
            raise TransientDeliveryError(f"{self._where}: {reason}") from None
        if 200 <= response.status < 300:
            return DeliveryReceipt(
                response.status, f"{self._where} answered HTTP {response.status}"
            )
        raise error_for_answer(response.status, response.headers, response.body, where=self._where)
