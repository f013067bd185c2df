"""The contract every channel kind implements, and how a receiver's HTTP answer is judged.

A channel kind is a class with a ``kind`` name, a pydantic ``Options`` model validated from the
channel's stored config, and ``async send(message) -> DeliveryReceipt``. Options values typed
``SecretStr`` (at any depth) are the channel's secrets: :mod:`sigwatch.kinds` encrypts them at
rest and masks them when shown, as it does for source kinds. ``send`` raises
:class:`~sigwatch.errors.TransientDeliveryError` when a retry may succeed and
:class:`~sigwatch.errors.PermanentDeliveryError` when only the user can fix the channel.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from sigwatch.delivery.message import AlertMessage
from sigwatch.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from sigwatch.net.client import OutboundClient
from sigwatch.net.retry_after import parse_rate_limit_reset, parse_retry_after

_DETAIL_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """The receiver's answer to a delivered message: its HTTP status (if any) and a short note."""

    status_code: int | None
    detail: str


class Channel(Protocol):
    """A channel kind: built from validated options and the outbound client, sends messages."""

    kind: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def __init__(self, options: Any, client: OutboundClient) -> None: ...

    async def send(self, message: AlertMessage) -> DeliveryReceipt:
        """Deliver ``message`` once; raise Transient- or PermanentDeliveryError on failure."""
        ...


def error_for_answer(
    status: int, headers: Mapping[str, str], body: bytes, *, where: str
) -> DeliveryError:
    """The error a non-2xx answer from ``where`` stands for, with the receiver's own words.

    429 and 5xx (and 408, 425) are transient and carry the Retry-After the receiver asked for,
    from the header or from a JSON body's ``retry_after`` (Discord) or
    ``parameters.retry_after`` (Telegram). Redirects, 401/403 and every other 4xx are permanent.
    """
    said = _detail(body)
    answer = f"HTTP {status} {_phrase(status)}" + (f": {said}" if said else "")
    if status == 429 or status >= 500 or status in (408, 425):
        wait_s = retry_after_s(headers, body, rate_limited=status == 429)
        hint = f"retrying after {wait_s:g}s as asked" if wait_s is not None else "retrying later"
        return TransientDeliveryError(f"{where} answered {answer}; {hint}", retry_after_s=wait_s)
    if 300 <= status < 400:
        location = headers.get("location", "")
        target = f" to {_clean(location)[:_DETAIL_CHARS]}" if location else ""
        return PermanentDeliveryError(
            f"{where} answered {answer} (a redirect{target}): configure the final URL instead"
        )
    if status in (401, 403):
        return PermanentDeliveryError(
            f"{where} refused the credentials ({answer}): check the token or URL of this channel"
        )
    if status in (404, 410):
        return PermanentDeliveryError(
            f"{where} answered {answer}: the webhook, bot or chat is gone or the URL is wrong; "
            "fix the channel's URL"
        )
    if 400 <= status < 500:
        return PermanentDeliveryError(
            f"{where} rejected the message ({answer}): check the channel's settings"
        )
    return TransientDeliveryError(f"{where} gave an unexpected answer ({answer}); retrying later")


def retry_after_s(
    headers: Mapping[str, str],
    body: bytes,
    *,
    rate_limited: bool = False,
    now: datetime | None = None,
) -> float | None:
    """The longest wait the answer asks for, in seconds, or None when it names none.

    ``headers`` looks names up case-insensitively. A rate-limit refusal's reset header
    (``X-RateLimit-Reset-After`` from Discord, ``RateLimit-Reset`` …) counts too; on any other
    answer it only describes the window, so it is not a wait.
    """
    asked: list[float] = []
    for wait in (
        parse_retry_after(headers.get("retry-after"), now=now),
        parse_rate_limit_reset(headers, now=now) if rate_limited else None,
    ):
        if wait is not None:
            asked.append(wait)
    payload = _json_object(body)
    if payload is not None:
        parameters = payload.get("parameters")
        for value in (
            payload.get("retry_after"),
            parameters.get("retry_after") if isinstance(parameters, dict) else None,
        ):
            if isinstance(value, int | float) and not isinstance(value, bool):
                wait = _finite_wait(float(value))
                if wait is not None:
                    asked.append(wait)
    return max(asked) if asked else None


def _finite_wait(seconds: float) -> float | None:
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _detail(body: bytes) -> str:
    """The receiver's explanation: a JSON ``description``/``message``/``error``, or the text."""
    payload = _json_object(body)
    if payload is not None:
        for key in ("description", "message", "error"):
            value = payload.get(key)
            if isinstance(value, str) and value.strip():
                return _clean(value)[:_DETAIL_CHARS]
        return ""
    return _clean(body[: _DETAIL_CHARS * 4].decode("utf-8", "replace"))[:_DETAIL_CHARS]


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "(unknown status)"
