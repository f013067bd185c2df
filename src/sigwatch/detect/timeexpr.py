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

# Gates. Each family of patterns runs only when the text has what every one of its matches needs,
# and from the first place one could begin (a case-insensitive scan costs microseconds per text,
# most texts name no time). The text is read once as runs of ASCII letters (_letters) and the runs
# that are gate words are picked out with one set intersection. A gate is exact, never skipping a
# match, because each word a pattern needs is a whole run:
# - the patterns begin those words at \b, \s or "-" and end them at \b, \s, "." or (?![a-z]),
#   so never next to an ASCII letter nor to one of the four non-ASCII letters below;
# - under IGNORECASE a pattern letter matches its capital and only these four non-ASCII letters
#   (checked over all code points), which are read as the letter they match;
# - every other character separates runs, digits too: "Jan2025" (a _MONTH_YEAR match) has "jan".
_CASE_ODDITIES: Final = (("\u0130", "i"), ("\u0131", "i"), ("\u017f", "s"), ("\u212a", "k"))
# ASCII letters lower-cased; ASCII digits and the bytes of non-ASCII characters (which include
# every other digit) as tabs; everything else as spaces. Both tabs and spaces separate runs.
_LETTERS: Final = bytes(
    (code | 0x20 if chr(code).isalpha() else ord("\t") if chr(code).isdigit() else ord(" "))
    if code < 0x80
    else ord("\t")
    for code in range(256)
)


def _words(*words: str) -> frozenset[bytes]:
    return frozenset(word.encode() for word in words)


_MONTH_NAMES: Final = _words(
    "jan", "january", "feb", "february", "mar", "march", "apr", "april", "may", "jun", "june",
    "jul", "july", "aug", "august", "sep", "sept", "september", "oct", "october", "nov",
    "november", "dec", "december",
)  # fmt: skip
_MONTH_ALONE_LEADS: Final = _words(  # "end" stands for "end of" and "the end of"
    "in", "by", "during", "until", "end", "late", "early", "mid", "beginning"
)  # fmt: skip
_QUARTER_LETTERS: Final = _words("q", "h")  # "Q1", "H2": the digit ends the run
_RELATIVE_LEADS: Final = _words("in", "within")
_RELATIVE_UNITS: Final = _words(
    "min", "mins", "minute", "minutes", "hour", "hours", "hr", "hrs", "h", "day", "days", "week",
    "weeks", "month", "months",
)  # fmt: skip
_DAY_NAMES: Final = _words("today", "tonight", "tomorrow")
_PERIODS: Final = _words("week", "weekend", "month")  # after "next", "this", "end of the"
_PERIOD_LEADS: Final = _words("next", "this", "end")
_DAY_WORD_LEADS: Final = _DAY_NAMES | _PERIOD_LEADS  # the words a _DAY_WORD match begins with
_WEEKDAY_NAMES: Final = _words(*_WEEKDAYS)
_WEEKDAY_LEADS: Final = _words("on", "next", "this", "coming")
_GATE_WORDS: Final = (
    _MONTH_NAMES | _MONTH_ALONE_LEADS | _QUARTER_LETTERS | _words("quarter") | _RELATIVE_LEADS
    | _RELATIVE_UNITS | _DAY_NAMES | _PERIODS | _PERIOD_LEADS | _WEEKDAY_NAMES | _WEEKDAY_LEADS
)  # fmt: skip
# Every family but _ISO and _TIME needs one of these (the other gate words only lead them in).
_ANCHORS: Final = (
    _MONTH_NAMES | _QUARTER_LETTERS | _words("quarter") | _RELATIVE_UNITS | _DAY_NAMES | _PERIODS
    | _WEEKDAY_NAMES
)  # fmt: skip
# A quarter is a letter and a digit ("Q1", "h2": no other letter matches h or q under IGNORECASE),
# or an ordinal, blanks and "quarter" (in _LETTERS "1st" is a tab and "st", a blank a tab or space).
_QUARTER_NUMBER: Final = re.compile(r"[hHqQ][1-4]\b")
_ORDINAL_QUARTER: Final = re.compile(rb"(?:first|second|third|fourth|st|nd|rd|th)[\t ]++quarter")
# An ISO date starts with "20", two digits and "-" (the _ISO pattern is case-sensitive).
_ISO_START: Final = re.compile(r"20\d\d-")
# A kept _TIME match has minutes (":" then two digits), or am/pm after a digit and blanks: in
# _LETTERS a run of tabs and spaces with a tab in it, then "am", "pm", "a m" or "p m" ("9 a.m.",
# "11amazing"). _AM_PM looks for that backwards, in the reversed bytes, so that it starts only at
# an "m" and reads each run once (a text in another script is long runs of tabs).
_MINUTES: Final = re.compile(r":[0-5]\d")
_AM_PM: Final = re.compile(rb"m ?[ap] *+\t")
# a time begins with a digit (_with_time looks for one near a date before trying _TIME)
_DIGIT: Final = re.compile(r"\d")
_TAB: Final = ord("\t")  # "in" and find() take a byte as an int much faster than as bytes
_ONE_DAY: Final = timedelta(days=1)
_ONE_SECOND: Final = timedelta(seconds=1)
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
    letters = _letters(text)
    words = _GATE_WORDS.intersection(letters.split())
    anchored = not words.isdisjoint(_ANCHORS)
    iso = _ISO_START.search(text) if "-" in text else None
    times = published is not None and _may_name_a_time(text, letters)
    if not (anchored or iso or times):
        return []  # _ISO and _TIME need these gates, every other family an anchor
    # the families run in a fixed order: a match overlapping an earlier family's is dropped
    finder = _Finder(text, letters, words)
    if iso:
        finder.iso_dates(iso.start())
    if anchored:
        finder.month_dates(published)
        finder.quarters(published)
        if published is not None:
            finder.relative(published)
            finder.day_words(published)
            finder.weekdays(published)
    if times and published is not None:
        finder.times(published)
    found = finder.found
    if len(found) > 1:
        found.sort(key=lambda item: item.start)
    return found


class _Finder:
    """Runs the pattern families over one text and keeps their matches that do not overlap.

    Each family runs only past its gate (see the comment above _CASE_ODDITIES), and from the first
    place one of its matches could begin: finditer from there finds the same matches, as \\b and
    look-behinds still look at the characters before that place.
    """

    __slots__ = ("text", "letters", "words", "found", "_taken")

    def __init__(self, text: str, letters: bytes, words: frozenset[bytes]) -> None:
        self.text = text
        self.letters = letters
        self.words = words
        self.found: list[TimeExpression] = []
        self._taken: list[tuple[int, int]] = []

    def add(self, start: int, end: int, when: datetime, until: datetime, precision: str) -> None:
        if any(start < b and a < end for a, b in self._taken):
            return
        self._taken.append((start, end))
        self.found.append(TimeExpression(start, end, self.text[start:end], when, until, precision))

    def first(self, wanted: frozenset[bytes] | None) -> int:
        """Where the first of the wanted words (None: the first digit) is in the text, or before.

        0 unless the text is ASCII: only then are the offsets in self.letters its offsets.
        """
        if len(self.letters) != len(self.text):
            return 0
        if wanted is None:
            return max(self.letters.find(_TAB), 0)
        present = self.words & wanted
        return min(map(self.letters.find, present)) if present else 0

    def iso_dates(self, first: int) -> None:
        text = self.text
        for match in _ISO.finditer(text, first):
            day = _date(int(match["y"]), int(match["mo"]), int(match["d"]))
            if day is not None:
                self.add(*_with_time(text, match.start(), match.end(), day))

    def month_dates(self, published: datetime | None) -> None:
        text, words = self.text, self.words
        if words.isdisjoint(_MONTH_NAMES):
            return
        # "Dec 3" and "3 Dec" need a digit; the one begins with the month, the other with a digit
        scans = ((_MONTH_DAY, _MONTH_NAMES), (_DAY_MONTH, None)) if _TAB in self.letters else ()
        for pattern, begins in scans:
            for match in pattern.finditer(text, self.first(begins)):
                month = _MONTHS[match["mon"][:3].lower()]
                day_number = int(match["d"])
                year = int(match["y"]) if match["y"] else None
                day = _resolve_year(year, month, day_number, published)
                if day is not None:
                    self.add(*_with_time(text, match.start(), match.end(), day))
        # "March 2021" needs a year, which begins with "19" or "20"
        for match in _MONTH_YEAR.finditer(text) if "20" in text or "19" in text else ():
            month = _MONTHS[match["mon"][:3].lower()]
            self.add(
                match.start(), match.end(), *_month_window(int(match["y"]), month, match["mod"])
            )
        if published is None or words.isdisjoint(_MONTH_ALONE_LEADS):
            return  # "in March", "late Feb": a lead word before the month
        for match in _MONTH_ALONE.finditer(text):
            month = _MONTHS[match["mon"][:3].lower()]
            year = published.year if month >= published.month - 3 else published.year + 1
            self.add(match.start(), match.end(), *_month_window(year, month, match["mod"]))

    def quarters(self, published: datetime | None) -> None:
        if not _may_name_a_quarter(self.text, self.letters, self.words):
            return
        for match in _QUARTER.finditer(self.text):
            window = _quarter_window(match, published)
            if window is not None:
                self.add(match.start(), match.end(), *window)

    def relative(self, published: datetime) -> None:
        if self.words.isdisjoint(_RELATIVE_UNITS) or self.words.isdisjoint(_RELATIVE_LEADS):
            return  # "in 2 hours", "within a day": a lead word and a unit
        for match in _RELATIVE.finditer(self.text, self.first(_RELATIVE_LEADS)):
            count = _NUMBER_WORDS.get(match["n"].lower()) or int(match["n"])
            unit = match["unit"].lower().rstrip("s")
            seconds = _UNITS.get(unit, _UNITS.get(unit[:3], 3600))
            when = published + timedelta(seconds=count * seconds)
            self.add(match.start(), match.end(), when, when, "minute" if seconds < 86400 else "day")

    def day_words(self, published: datetime) -> None:
        words = self.words
        if words.isdisjoint(_DAY_NAMES) and (
            words.isdisjoint(_PERIODS) or words.isdisjoint(_PERIOD_LEADS)
        ):
            return  # "today", or a lead word and a period ("next week", "end of the month")
        for match in _DAY_WORD.finditer(self.text, self.first(_DAY_WORD_LEADS)):
            start, end, when, until, precision = _day_word(match, published)
            self.add(*_with_time(self.text, start, end, (when, until, precision)))

    def weekdays(self, published: datetime) -> None:
        if self.words.isdisjoint(_WEEKDAY_NAMES) or self.words.isdisjoint(_WEEKDAY_LEADS):
            return  # "on Friday": a lead word and a weekday
        for match in _WEEKDAY.finditer(self.text, self.first(_WEEKDAY_LEADS)):
            target = _WEEKDAYS.index(match["wd"].lower())
            midnight = published.replace(hour=0, minute=0, second=0, microsecond=0)
            ahead = (target - published.weekday()) % 7 or 7
            if match["mod"].lower() == "next" and ahead < 7:
                ahead += 7 if ahead <= 2 else 0
            when = midnight + timedelta(days=ahead)
            self.add(
                *_with_time(self.text, match.start(), match.end(), (when, _day_end(when), "day"))
            )

    def times(self, published: datetime) -> None:
        """Times of day: they count with minutes and a zone, or with am/pm."""
        for match in _TIME.finditer(self.text, self.first(None)):
            if not (match["m"] or match["ampm"]) or not (match["tz"] or match["ampm"]):
                continue
            clock = _clock(match)
            if clock is None:
                continue
            when = published.replace(hour=0, minute=0, second=0, microsecond=0) + clock
            if when < published - timedelta(hours=1):
                when += timedelta(days=1)
            self.add(match.start(), match.end(), when, when, "minute")


def _letters(text: str) -> bytes:
    """The text's UTF-8 bytes translated by _LETTERS, with İ ı ſ K read as i i s k."""
    if not text.isascii():
        for odd, letter in _CASE_ODDITIES:
            text = text.replace(odd, letter)
    return text.encode("utf-8", "surrogatepass").translate(_LETTERS)  # even a lone surrogate


def _may_name_a_quarter(text: str, letters: bytes, words: frozenset[bytes]) -> bool:
    """False only when no _QUARTER match is in the text (see _QUARTER_NUMBER)."""
    if not words.isdisjoint(_QUARTER_LETTERS) and _QUARTER_NUMBER.search(text) is not None:
        return True
    return b"quarter" in words and _ORDINAL_QUARTER.search(letters) is not None


def _may_name_a_time(text: str, letters: bytes) -> bool:
    """False only when no _TIME match in the text has minutes or am/pm (_MINUTES, _AM_PM)."""
    if ":" in text and _MINUTES.search(text) is not None:
        return True
    return _TAB in letters and _AM_PM.search(letters[::-1]) is not None


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _date(year: int, month: int, day: int) -> tuple[datetime, datetime, str] | None:
    try:
        when = datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None
    return when, _day_end(when), "day"


def _day_end(when: datetime) -> datetime:
    return when + _ONE_DAY - _ONE_SECOND


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
    # a time begins with a digit: none within 24 characters after or before, nothing to look at
    if _DIGIT.search(text, end, end + 24) is not None:
        after = _TIME.match(text, _skip_joiners(text, end))
        if after is not None and (after["m"] or after["ampm"]) and after.end() - end <= 24:
            clock = _clock(after)
            if clock is not None:
                moment = when + clock
                return start, after.end(), moment, moment, "minute"
    window = text[max(0, start - 24) : start]
    for before in _TIME.finditer(window) if _DIGIT.search(window) is not None else ():
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
