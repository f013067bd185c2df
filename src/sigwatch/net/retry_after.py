"""How long a server asked sigwatch to wait: Retry-After and the rate-limit reset headers.

The one place these headers are read, for fetches and deliveries alike. Servers write them in
many ways, so everything here is tolerant: a value that cannot be read is ignored (None), never
an exception, and a time in the past is a wait of zero.

- ``Retry-After`` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date.
- The rate-limit reset: ``X-RateLimit-Reset`` (GitHub, as epoch seconds; Reddit, as seconds
  left), ``RateLimit-Reset`` (the IETF draft, seconds left), ``x-rate-limit-reset`` (X, epoch
  seconds), ``X-RateLimit-Reset-After`` (Discord, seconds left), and the ``reset=``/``t=``
  parameter of the draft's structured ``RateLimit`` header. A number is read as epoch
  milliseconds from 10**12, epoch seconds from 10**9 (September 2001: no window lasts 31
  years), and seconds left below that.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_HONOURED_WAIT_S = 24 * 3600.0
"""The longest wait sigwatch honours; a server asking for more is tried again after a day."""

_RESET_HEADERS = (
    "x-ratelimit-reset",
    "ratelimit-reset",
    "x-rate-limit-reset",
    "x-ratelimit-reset-after",
)
_REMAINING_HEADERS = ("x-ratelimit-remaining", "ratelimit-remaining", "x-rate-limit-remaining")
_EPOCH_MS_FROM = 1e12
_EPOCH_S_FROM = 1e9
# reset=30 (draft-ietf-httpapi-ratelimit-headers up to -06) or t=30 (-07 on), and remaining=0 or
# r=0, as parameters anywhere in the structured RateLimit header.
_STRUCTURED_RESET = re.compile(r"(?:^|[;,\s])(?:reset|t)\s*=\s*([^;,\s]+)", re.I)
_STRUCTURED_REMAINING = re.compile(r"(?:^|[;,\s])(?:remaining|r)\s*=\s*([^;,\s]+)", re.I)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds the ``Retry-After`` value asks for, or None when absent or unreadable.

    A duplicated header (joined as ``"120, 60"``) gives the longest of its numbers.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    number = _finite_number(text)
    if number is not None:
        return number if number >= 0 else None
    moment = _http_date(text)
    if moment is not None:
        return max((moment - _now(now)).total_seconds(), 0.0)
    numbers = [_finite_number(part) for part in text.split(",")]
    waits = [n for n in numbers if n is not None and n >= 0]
    return max(waits) if waits else None


def parse_rate_limit_reset(
    headers: Mapping[str, str], *, now: datetime | None = None
) -> float | None:
    """Seconds until the rate-limit window resets, from whichever reset header is readable.

    ``headers`` must look names up case-insensitively (as ``httpx.Headers`` does) or use
    lower-case names. Several readable headers give the longest wait.
    """
    current = _now(now).timestamp()
    waits: list[float] = []
    for name in _RESET_HEADERS:
        for number in _numbers(headers.get(name)):
            wait = _reset_wait(number, current, delta_only=name.endswith("-after"))
            if wait is not None:
                waits.append(wait)
    structured = headers.get("ratelimit")
    if structured:
        for match in _STRUCTURED_RESET.finditer(structured):
            parameter = _finite_number(match.group(1))
            if parameter is not None:
                wait = _reset_wait(parameter, current, delta_only=True)
                if wait is not None:
                    waits.append(wait)
    return max(waits) if waits else None


def rate_limit_exhausted(headers: Mapping[str, str]) -> bool:
    """True when a remaining-requests header says none are left in the current window."""
    values: list[str] = []
    for name in _REMAINING_HEADERS:
        value = headers.get(name)
        if value:
            values.extend(value.split(","))
    structured = headers.get("ratelimit")
    if structured:
        values.extend(match.group(1) for match in _STRUCTURED_REMAINING.finditer(structured))
    return any(_finite_number(value) == 0 for value in values)


def describe_wait(seconds: float) -> str:
    """A wait for people to read: ``45 s``, ``12 min``, ``1.5 h``, ``2 days``."""
    if seconds < 90:
        return f"{max(seconds, 0.0):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{_one_decimal(seconds / 3600)} h"
    return f"{_one_decimal(seconds / 86400)} days"


def _one_decimal(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _reset_wait(number: float, current_s: float, *, delta_only: bool) -> float | None:
    if number < 0:
        return None
    if delta_only or number < _EPOCH_S_FROM:
        return number
    epoch_s = number / 1000 if number >= _EPOCH_MS_FROM else number
    return max(epoch_s - current_s, 0.0)


def _numbers(value: str | None) -> Iterable[float]:
    if not value:
        return []
    parsed = (_finite_number(part) for part in value.split(","))
    return [number for number in parsed if number is not None]


def _finite_number(text: str) -> float | None:
    text = text.strip()
    # float() also reads "nan", "inf", "1_000" and non-ASCII digits; a header value is none of
    # those, so only plain ASCII decimals pass.
    if not text or not text.isascii() or any(c not in "0123456789.+-eE" for c in text):
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _http_date(text: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)
