"""Time expressions in a post, resolved against its publication time (never the clock).

Understood: ISO dates ("2024-12-06"), month-day and day-month dates with or without a year
("Dec 3", "March 30th, 2021", "1st December 2021"), times of day with a zone ("14:00 UTC",
"11:00 (UTC+8)", "10:00 KST", "12pm CST") alone or beside a date, relative phrases ("in 2 hours",
"within 24 hours", "today", "tomorrow", "next week", "this weekend", "on Friday"), months
("in March", "late Feb", "end of March 2021") and quarters or halves ("Q1 2026", "second quarter",
"H2"). A date without a year takes the publication year, or the next one when that would put it
more than three months before publication. Without a publication time only absolute dates that
carry a year resolve. Every result is an aware UTC datetime with the end of the window it names.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

_MONTHS: Final = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH = (
    r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_YEAR = r"(?P<y>(?:19|20)\d{2})"
_DAY = r"(?P<d>[0-3]?\d)(?:st|nd|rd|th)?"
_ZONES: Final = {
    "utc": 0.0, "gmt": 0.0, "z": 0.0, "kst": 9.0, "jst": 9.0, "sgt": 8.0, "hkt": 8.0,
    "est": -5.0, "edt": -4.0, "et": -5.0, "cst": -6.0, "cdt": -5.0, "pst": -8.0, "pdt": -7.0,
    "cet": 1.0, "cest": 2.0, "bst": 1.0, "ist": 5.5, "aest": 10.0, "wib": 7.0,
}  # fmt: skip
_ZONE = (
    r"(?:\(?\s*(?P<tz>utc|gmt|kst|jst|sgt|hkt|est|edt|et|cst|cdt|pst|pdt|cet|cest|bst|ist|aest"
    r"|wib)(?:\s*(?P<sign>[+-])\s*(?P<off>\d{1,2})(?::?(?P<offm>\d{2}))?)?\s*\)?)"
)
_NUMBER_WORDS: Final = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "24": 24, "48": 48, "few": 3,
}  # fmt: skip
_UNITS: Final = {"min": 60, "minute": 60, "hour": 3600, "hr": 3600, "h": 3600, "day": 86400,
                 "week": 604800, "month": 2_592_000}  # fmt: skip
_WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ORDINAL_QUARTERS: Final = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3,
                            "fourth": 4, "4th": 4}  # fmt: skip

_F = re.IGNORECASE
_ISO = re.compile(r"\b(?P<y>20\d{2})-(?P<mo>[01]?\d)-(?P<d>[0-3]?\d)\b")
_MONTH_DAY = re.compile(rf"\b{_MONTH}\s+{_DAY}\b(?:,?\s*{_YEAR}\b)?", _F)
_DAY_MONTH = re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?![a-z])(?:,?\s*{_YEAR}\b)?", _F)
_MONTH_YEAR = re.compile(
    rf"\b(?:(?P<mod>early|mid|late|end of|the end of|beginning of)[\s-]+)?{_MONTH}(?![a-z])"
    rf",?\s*{_YEAR}\b",
    _F,
)
_MONTH_ALONE = re.compile(
    rf"\b(?P<mod>in|by|during|until|end of|the end of|late|early|mid|beginning of)[\s-]+"
    rf"{_MONTH}(?![a-z])",
    _F,
)
_QUARTER = re.compile(
    r"\b(?:(?P<mod>end of|the end of|towards the end of|late|early|beginning of)\s+)?"
    r"(?:q(?P<q>[1-4])|(?P<qw>first|second|third|fourth|1st|2nd|3rd|4th)\s+quarter|h(?P<h>[12]))"
    r"\b(?:\s*(?:of\s+)?,?\s*(?P<y>(?:19|20)\d{2})\b)?",
    _F,
)
_RELATIVE = re.compile(
    r"\b(?:in|within)\s+(?:the\s+next\s+)?(?:about\s+)?(?P<n>\d+|an?|one|two|three|four|five|six"
    r"|seven|eight|nine|ten|twelve|few)\s+(?P<unit>min(?:ute)?s?|hours?|hrs?|h|days?|weeks?"
    r"|months?)\b",
    _F,
)
_DAY_WORD = re.compile(
    r"\b(?P<w>today|tonight|tomorrow|next week|next month|this week|this weekend|this month"
    r"|end of (?:the|this) (?:week|month))\b",
    _F,
)
_WEEKDAY = re.compile(
    r"\b(?P<mod>on|next|this|coming)\s+(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday"
    r"|sunday)\b",
    _F,
)
_TIME = re.compile(
    rf"(?<![\d.:/])(?P<h>[0-2]?\d)(?::(?P<m>[0-5]\d))?\s*(?P<ampm>am|pm|a\.m\.|p\.m\.)?\s*{_ZONE}?",
    _F,
)

# Words without which a pattern family cannot match (see find_time_expressions).
_MONTH_WORD: Final = re.compile(
    r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])"
)
_QUARTER_WORDS: Final = ("q1", "q2", "q3", "q4", "h1", "h2", "quarter")
_DAY_WORDS: Final = (
    "today", "tonight", "tomorrow", "next week", "next month", "this week", "this month", "end of"
)  # fmt: skip
# The only characters that IGNORECASE matches to an ASCII letter and str.lower does not map to it.
_CASE_ODDITIES: Final = {0x130: "i", 0x131: "i", 0x17F: "s"}
_AM_PM: Final = re.compile(r"\d\s*(?:am|pm|a\.m\.|p\.m\.)")
_JOINER: Final = re.compile(r"[\s,]*(?:at|@|from|,)?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class TimeExpression:
    """A time phrase found in a text: where it is, when it starts and ends (UTC), how precise."""

    start: int
    end: int
    text: str
    when: datetime
    until: datetime
    precision: str  # "minute", "day", "week", "month", "quarter"


def find_time_expressions(text: str, published: datetime | None) -> list[TimeExpression]:
    """Every resolvable time expression in the text, in order of position."""
    published = _as_utc(published) if published is not None else None
    found: list[TimeExpression] = []
    taken: list[tuple[int, int]] = []
    # Each family of patterns runs only when the words it needs are in the text: a plain
    # substring test is far cheaper than a case-insensitive pattern scan, and finds the same.
    lower = text.lower() if text.isascii() else text.translate(_CASE_ODDITIES).lower()
    months = _MONTH_WORD.search(lower) is not None

    def add(start: int, end: int, when: datetime, until: datetime, precision: str) -> None:
        if any(start < b and a < end for a, b in taken):
            return
        taken.append((start, end))
        found.append(TimeExpression(start, end, text[start:end], when, until, precision))

    if "-" in text:
        for match in _ISO.finditer(text):
            day = _date(int(match["y"]), int(match["mo"]), int(match["d"]))
            if day is not None:
                add(*_with_time(text, match.start(), match.end(), day))
    for pattern in (_MONTH_DAY, _DAY_MONTH) if months else ():
        for match in pattern.finditer(text):
            month = _MONTHS[match["mon"][:3].lower()]
            day_number = int(match["d"])
            year = int(match["y"]) if match["y"] else None
            day = _resolve_year(year, month, day_number, published)
            if day is not None:
                add(*_with_time(text, match.start(), match.end(), day))
    for match in _MONTH_YEAR.finditer(text) if months else ():
        month = _MONTHS[match["mon"][:3].lower()]
        add(match.start(), match.end(), *_month_window(int(match["y"]), month, match["mod"]))
    if published is not None and months:
        for match in _MONTH_ALONE.finditer(text):
            month = _MONTHS[match["mon"][:3].lower()]
            year = published.year if month >= published.month - 3 else published.year + 1
            add(match.start(), match.end(), *_month_window(year, month, match["mod"]))
    if any(word in lower for word in _QUARTER_WORDS):
        for match in _QUARTER.finditer(text):
            window = _quarter_window(match, published)
            if window is not None:
                add(match.start(), match.end(), *window)
    if published is not None:
        for match in _RELATIVE.finditer(text) if "in" in lower else ():
            count = _NUMBER_WORDS.get(match["n"].lower()) or int(match["n"])
            unit = match["unit"].lower().rstrip("s")
            seconds = _UNITS.get(unit, _UNITS.get(unit[:3], 3600))
            when = published + timedelta(seconds=count * seconds)
            add(match.start(), match.end(), when, when, "minute" if seconds < 86400 else "day")
        for match in _DAY_WORD.finditer(text) if any(w in lower for w in _DAY_WORDS) else ():
            start, end, when, until, precision = _day_word(match, published)
            add(*_with_time(text, start, end, (when, until, precision)))
        for match in _WEEKDAY.finditer(text) if "day" in lower else ():
            target = _WEEKDAYS.index(match["wd"].lower())
            midnight = published.replace(hour=0, minute=0, second=0, microsecond=0)
            ahead = (target - published.weekday()) % 7 or 7
            if match["mod"].lower() == "next" and ahead < 7:
                ahead += 7 if ahead <= 2 else 0
            when = midnight + timedelta(days=ahead)
            add(*_with_time(text, match.start(), match.end(), (when, _day_end(when), "day")))
        # a time of day counts with minutes and a zone, or with am/pm
        if ":" in text or _AM_PM.search(lower) is not None:
            for match in _TIME.finditer(text):
                if not (match["m"] or match["ampm"]) or not (match["tz"] or match["ampm"]):
                    continue
                clock = _clock(match)
                if clock is None:
                    continue
                when = published.replace(hour=0, minute=0, second=0, microsecond=0) + clock
                if when < published - timedelta(hours=1):
                    when += timedelta(days=1)
                add(match.start(), match.end(), when, when, "minute")
    found.sort(key=lambda item: item.start)
    return found


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _date(year: int, month: int, day: int) -> tuple[datetime, datetime, str] | None:
    try:
        when = datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None
    return when, _day_end(when), "day"


def _day_end(when: datetime) -> datetime:
    return when + timedelta(days=1) - timedelta(seconds=1)


def _resolve_year(
    year: int | None, month: int, day: int, published: datetime | None
) -> tuple[datetime, datetime, str] | None:
    if year is not None:
        return _date(year, month, day)
    if published is None:
        return None
    resolved = _date(published.year, month, day)
    if resolved is not None and resolved[0] < published - timedelta(days=92):
        resolved = _date(published.year + 1, month, day)
    return resolved


def _clock(match: re.Match[str]) -> timedelta | None:
    """The time of day (as an offset from UTC midnight) a _TIME match names."""
    hour = int(match["h"])
    minute = int(match["m"] or 0)
    ampm = (match["ampm"] or "").lower().replace(".", "")
    if ampm == "pm" and hour < 12:
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0
    if hour > 23:
        return None
    offset = _ZONES.get((match["tz"] or "utc").lower(), 0.0)
    if match["sign"]:
        extra = int(match["off"]) + int(match["offm"] or 0) / 60
        offset += extra if match["sign"] == "+" else -extra
    return timedelta(hours=hour - offset, minutes=minute)


def _with_time(
    text: str, start: int, end: int, day: tuple[datetime, datetime, str]
) -> tuple[int, int, datetime, datetime, str]:
    """A day widened to the time of day written within a few characters before or after it."""
    when, until, precision = day
    if precision != "day":
        return start, end, when, until, precision
    after = _TIME.match(text, _skip_joiners(text, end))
    if after is not None and (after["m"] or after["ampm"]) and after.end() - end <= 24:
        clock = _clock(after)
        if clock is not None:
            moment = when + clock
            return start, after.end(), moment, moment, "minute"
    window = text[max(0, start - 24) : start]
    for before in _TIME.finditer(window):
        if not (before["m"] or before["ampm"]) or window[before.end() :].strip(" ,(") not in {
            "",
            "on",
        }:
            continue
        clock = _clock(before)
        if clock is not None:
            moment = when + clock
            return start - len(window) + before.start(), end, moment, moment, "minute"
    return start, end, when, until, precision


def _skip_joiners(text: str, position: int) -> int:
    found = _JOINER.match(text, position)
    return found.end() if found else position


def _month_window(year: int, month: int, modifier: str | None) -> tuple[datetime, datetime, str]:
    last = monthrange(year, month)[1]
    first_day = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year, month, last, 23, 59, 59, tzinfo=UTC)
    mod = (modifier or "").lower()
    if mod in {"late", "end of", "the end of"}:
        first_day = datetime(year, month, max(last - 10, 1), tzinfo=UTC)
    elif mod == "mid":
        first_day = datetime(year, month, 10, tzinfo=UTC)
        end = datetime(year, month, 20, 23, 59, 59, tzinfo=UTC)
    elif mod in {"early", "beginning of"}:
        end = datetime(year, month, 10, 23, 59, 59, tzinfo=UTC)
    return first_day, end, "month"


def _quarter_window(
    match: re.Match[str], published: datetime | None
) -> tuple[datetime, datetime, str] | None:
    if match["h"]:
        first_month, months = (1, 6) if match["h"] == "1" else (7, 6)
    else:
        quarter = int(match["q"]) if match["q"] else _ORDINAL_QUARTERS[match["qw"].lower()]
        first_month, months = 3 * quarter - 2, 3
    if match["y"]:
        year = int(match["y"])
    elif published is not None:
        year = published.year
        if datetime(year, first_month + months - 1, 28, tzinfo=UTC) < published - timedelta(
            days=92
        ):
            year += 1
    else:
        return None
    last_month = first_month + months - 1
    start = datetime(year, first_month, 1, tzinfo=UTC)
    end = datetime(year, last_month, monthrange(year, last_month)[1], 23, 59, 59, tzinfo=UTC)
    if (match["mod"] or "").lower() in {"end of", "the end of", "towards the end of", "late"}:
        start = datetime(year, last_month, 1, tzinfo=UTC)
    return start, end, "quarter"


def _day_word(
    match: re.Match[str], published: datetime
) -> tuple[int, int, datetime, datetime, str]:
    word = " ".join(match["w"].lower().split())
    midnight = published.replace(hour=0, minute=0, second=0, microsecond=0)
    when, until, precision = _day_word_window(word, published, midnight)
    return match.start(), match.end(), when, until, precision


def _day_word_window(
    word: str, published: datetime, midnight: datetime
) -> tuple[datetime, datetime, str]:
    """The window a day word names ("tomorrow", "next week", "end of the month" …)."""
    if word == "today":
        return midnight, _day_end(midnight), "day"
    if word == "tonight":
        return midnight + timedelta(hours=18), _day_end(midnight), "day"
    if word == "tomorrow":
        return midnight + timedelta(days=1), _day_end(midnight + timedelta(days=1)), "day"
    monday = midnight - timedelta(days=published.weekday())
    if word == "this week":
        return published, _day_end(monday + timedelta(days=6)), "week"
    if word == "this weekend":
        return monday + timedelta(days=5), _day_end(monday + timedelta(days=6)), "week"
    if word == "next week":
        return monday + timedelta(days=7), _day_end(monday + timedelta(days=13)), "week"
    month_start = midnight.replace(day=1)
    month_end = month_start.replace(day=monthrange(month_start.year, month_start.month)[1])
    if word == "this month":
        return published, _day_end(month_end), "month"
    if word == "next month":
        first = month_end + timedelta(days=1)
        last = first.replace(day=monthrange(first.year, first.month)[1])
        return first, _day_end(last), "month"
    # "end of the week", "end of this month"
    period_end = monday + timedelta(days=6) if word.endswith("week") else month_end
    return period_end, _day_end(period_end), "day"
