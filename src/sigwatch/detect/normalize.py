"""Text normalisation for matching: NFKC, Latin look-alikes folded, one lower-cased word string.

A post is seen three ways. ``folded`` is the text after NFKC (full-width and mathematical letters
become plain ones), with Cyrillic/Greek look-alikes folded to Latin and invisible characters
dropped; its case is kept, so case rules can be checked. ``key_text`` is ``folded`` lower-cased,
every character that is not a letter or digit turned into a space and runs of spaces collapsed,
padded with one space each side: the automaton's keys are written the same way, so a key can only
match whole words. Offsets map back from ``key_text`` to ``folded`` and from ``folded`` to the
original text, so spans always point into what the user wrote. ``scan_text`` is ``key_text``
before its runs of spaces are collapsed: the cheapest form to pre-scan most posts in.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from itertools import accumulate, compress
from typing import Final

# Letters from other scripts that render like Latin ones and are used to dodge keyword filters.
_CONFUSABLES: Final = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "ӏ": "l", "ɡ": "g", "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K",
    "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S",
    "І": "I", "Ї": "I", "Ј": "J", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W", "Ӏ": "I",
    # Greek
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "ι": "i", "κ": "k", "τ": "t", "υ": "u", "χ": "x",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Latin variants that NFKC keeps
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɩ": "i", "ʏ": "y", "ᴀ": "A", "ʙ": "B", "ᴄ": "C", "ᴅ": "D",
    "ᴇ": "E", "ɢ": "G", "ʜ": "H", "ɪ": "I", "ᴊ": "J", "ᴋ": "K", "ʟ": "L", "ᴍ": "M", "ɴ": "N",
    "ᴏ": "O", "ᴘ": "P", "ʀ": "R", "ᴛ": "T", "ᴜ": "U", "ᴠ": "V", "ᴡ": "W", "ᴢ": "Z",
    # punctuation look-alikes that would split or join words differently
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-", "＄": "$", "﹩": "$",
    "’": "'", "‘": "'", "＃": "#", "＠": "@",
}  # fmt: skip
_DROPPED_CATEGORIES: Final = frozenset({"Cf", "Mn", "Me"})


def fold_char(char: str) -> str:
    """One character as matching sees it: NFKC, look-alikes to Latin, invisible marks dropped."""
    if char in _CONFUSABLES:
        return _CONFUSABLES[char]
    out = []
    for part in unicodedata.normalize("NFKC", char):
        part = _CONFUSABLES.get(part, part)
        if unicodedata.category(part) in _DROPPED_CATEGORIES:
            continue
        # str.lower must not change the length, or key offsets would drift (e.g. "İ").
        if len(part.lower()) != 1:
            part = part.lower()[0]
        out.append(part)
    return "".join(out)


class _FoldTable(dict[int, str]):
    """str.translate table that folds each new character once and remembers the answer."""

    def __missing__(self, code: int) -> str:
        value = fold_char(chr(code))
        self[code] = value
        return value


class _WordTable(dict[int, str]):
    """str.translate table keeping letters and digits and turning everything else into a space."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        value = char if char.isalnum() else " "
        self[code] = value
        return value


_FOLD: Final = _FoldTable()
_WORDS: Final = _WordTable()
# The same mapping for ASCII text as a byte table: bytes.translate is a tight C loop.
_ASCII_WORDS: Final = bytes(
    (code | 0x20) if chr(code).isalpha() else code if chr(code).isdigit() else 0x20
    for code in range(128)
) + bytes([0x20] * 128)


class _KeyFoldTable(dict[str, str]):
    """Non-ASCII character → its key form (folded, lower case, non-word as a space), cached."""

    def __missing__(self, char: str) -> str:
        value = fold_char(char).lower().translate(_WORDS)
        self[char] = value
        return value


_KEY_FOLD: Final = _KeyFoldTable()
_NON_ASCII: Final = re.compile(r"[^\x00-\x7f]")


def _key_fold(match: re.Match[str]) -> str:
    return _KEY_FOLD[match.group(0)]


def _fold(match: re.Match[str]) -> str:
    # ASCII characters fold to themselves, so only the others need the table
    return _FOLD[ord(match.group(0))]


def key_text_of(text: str) -> str:
    """The key_text of a text (see the module docstring), the cheap way for mostly-ASCII text."""
    return collapse_spaces(scan_text_of(text))


def collapse_spaces(scan_text: str) -> str:
    """key_text from scan_text: each run of spaces made one."""
    if "  " in scan_text:  # punctuation next to a space left a run of spaces
        return f" {' '.join(scan_text.split())} "
    return scan_text


def scan_text_of(text: str) -> str:
    """key_text before its runs of spaces are collapsed: the cheapest text to pre-scan.

    Every single-word key is found in it exactly as in key_text; the matcher also holds its keys
    of several words with the words two or three spaces apart, for punctuation between them.
    """
    if text.isascii():
        return f" {text.encode('ascii').translate(_ASCII_WORDS).decode('ascii')} "
    return f" {_spaced_words(text)} "


def _spaced_words(text: str) -> str:
    """A non-ASCII text with letters and digits kept (lower case) and anything else a space."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: fold character by character
        data = b""
    # Most non-ASCII characters in posts are emoji and symbols that fold to a space: then every
    # byte of them may simply become a space, and the fast byte table does the whole text.
    if data and all(map(_SPACING.__getitem__, data.translate(None, _ASCII_BYTES).decode("utf-8"))):
        return data.translate(_ASCII_WORDS).decode("ascii")
    # fold only the non-ASCII characters (a full-width letter, an accent), then take the
    # byte path if nothing but ASCII is left
    text = _NON_ASCII.sub(_key_fold, text)
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_WORDS).decode("ascii")
    return text.lower().translate(_WORDS)


class _SpacingTable(dict[str, bool]):
    """Character → True when its key form is only spaces (an emoji, a dash, an ellipsis)."""

    def __missing__(self, char: str) -> bool:
        value = _KEY_FOLD[char].isspace()
        self[char] = value
        return value


_SPACING: Final = _SpacingTable()
_ASCII_BYTES: Final = bytes(range(128))


class NormalizedText:
    """A post's text in the three forms matching needs, with offset maps computed on demand."""

    __slots__ = (
        "original", "folded", "key_text", "_to_original", "_key_starts", "_key_folded", "_urls",
        "_words",
    )  # fmt: skip

    def __init__(self, original: str, key_text: str | None = None) -> None:
        self.original = original
        self.folded = original if original.isascii() else _NON_ASCII.sub(_fold, original)
        self.key_text = key_text if key_text is not None else key_text_of(original)
        self._to_original: list[int] | None = None
        self._key_starts: list[int] | None = None
        self._key_folded: list[int] | None = None
        self._urls: list[tuple[int, int, str]] | None = None
        self._words: list[str] | None = None

    @property
    def urls(self) -> list[tuple[int, int, str]]:
        """Every URL in the folded text as (start, end, url)."""
        if self._urls is None:
            self._urls = extract_urls(self.folded)
        return self._urls

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original-text offsets of the folded slice [start, end)."""
        if self.folded is self.original:
            return start, end
        mapping = self._to_original
        if mapping is None:
            mapping = self._to_original = self._original_map()
        if not mapping:  # every character folded to exactly one: offsets are shared
            size = len(self.original)
            first = min(start, size)
            return first, (min(end, size + 1) if end > start else first)
        first = mapping[min(start, len(mapping) - 1)]
        last = mapping[min(end - 1, len(mapping) - 1)] + 1 if end > start else first
        return first, last

    def _original_map(self) -> list[int]:
        """Folded offset -> original offset, or [] when each character folded to one."""
        original = self.original
        if all(len(_FOLD[ord(m.group(0))]) == 1 for m in _NON_ASCII.finditer(original)):
            return []
        mapping: list[int] = []
        for index, char in enumerate(original):
            mapping.extend([index] * len(_FOLD[ord(char)]))
        mapping.append(len(original))
        return mapping

    @property
    def words(self) -> list[str]:
        """The words of key_text, in order."""
        if self._words is None:
            self._words = self.key_text.split()
        return self._words

    @property
    def word_starts(self) -> list[int]:
        """Where each word starts in folded."""
        if self._key_folded is None:
            self._key_folded = _word_starts(_folded_words(self.folded))
        return self._key_folded

    @property
    def key_word_starts(self) -> list[int]:
        """Where each word starts in key_text."""
        if self._key_starts is None:
            self._key_starts = _word_starts(self.key_text)
        return self._key_starts

    def folded_span(self, key_start: int, key_end: int) -> tuple[int, int]:
        """The folded-text offsets of the key_text slice [key_start, key_end) (whole words)."""
        starts = self.key_word_starts
        folded_starts = self.word_starts
        first_word = max(bisect_right(starts, key_start) - 1, 0)
        last_word = max(bisect_right(starts, key_end - 1) - 1, 0)
        start = folded_starts[first_word] + (key_start - starts[first_word])
        end = folded_starts[last_word] + (key_end - starts[last_word])
        return start, end

    def word_index(self, key_position: int) -> int:
        """The number (0-based) of the word that a key_text position falls in or follows."""
        return max(bisect_right(self.key_word_starts, key_position) - 1, 0)

    def word_at_folded(self, offset: int) -> int:
        """The number of the first word that starts at or after a folded offset."""
        return bisect_left(self.word_starts, offset)


def _folded_words(folded: str) -> str:
    """A folded text with its letters and digits (lower case) kept, anything else a space.

    Offsets are kept: each character is replaced by one. The bytes table does ASCII text, and
    text whose other characters are none of them letters or digits (emoji, dashes, quotes) once
    those are made spaces; only the rest goes through the (much slower) per-character table.
    """
    if not folded.isascii():
        if any(char.lower().isalnum() for char in set(_NON_ASCII.findall(folded))):
            return folded.lower().translate(_WORDS)
        folded = _NON_ASCII.sub(" ", folded)
    return folded.encode("ascii").translate(_ASCII_WORDS).decode("ascii")


_ONE_MORE: Final = (1).__add__


def _word_starts(spaced: str) -> list[int]:
    """Where each word of a text of words and spaces starts (C-level loops throughout)."""
    pieces = spaced.split(" ")  # a run of spaces leaves empty pieces, each a position apart
    offsets = accumulate(map(_ONE_MORE, map(len, pieces)), initial=0)
    return list(compress(offsets, pieces))


def key_form(phrase: str) -> str:
    """A phrase written the way key_text is: folded, lower case, words split by single spaces."""
    folded = phrase.translate(_FOLD).lower().translate(_WORDS)
    return " ".join(folded.split())


_URL: Final = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+", re.IGNORECASE)
_SCHEME_AND_WWW: Final = re.compile(r"^(?:https?://)?(?:www\.)?")
_HANDLE: Final = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{1,30})\b")
_CASHTAG: Final = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{0,14})\b")
_HASHTAG: Final = re.compile(r"(?<![\w#])#([A-Za-z][A-Za-z0-9_]{0,29})\b")


def extract_urls(text: str) -> list[tuple[int, int, str]]:
    """Every URL in the text as (start, end, url)."""
    # A URL starts with "http://", "https://" or "www." in any case: most texts have none, and
    # the pattern (tried at every character) need only start where the first could begin.
    lower = text.lower()
    scheme, www = lower.find("://"), lower.find("www.")
    if scheme < 0 and www < 0:
        return []
    start = 0
    if len(lower) == len(text):  # lower() kept the offsets
        starts = [scheme - len("https")] if scheme >= 0 else []
        starts += [www] if www >= 0 else []
        start = max(min(starts), 0)
    return [(m.start(), m.end(), m.group(0)) for m in _URL.finditer(text, start)]


def extract_handles(text: str) -> list[tuple[int, int, str]]:
    """Every @handle as (start, end, handle without @)."""
    return [(m.start(), m.end(), m.group(1)) for m in _HANDLE.finditer(text)]


def extract_cashtags(text: str) -> list[tuple[int, int, str]]:
    """Every $CASHTAG as (start, end, symbol upper case without $)."""
    return [(m.start(), m.end(), m.group(1).upper()) for m in _CASHTAG.finditer(text)]


def extract_hashtags(text: str) -> list[tuple[int, int, str]]:
    """Every #hashtag as (start, end, tag without #)."""
    return [(m.start(), m.end(), m.group(1)) for m in _HASHTAG.finditer(text)]


def url_domain(url: str) -> str:
    """The host of a URL, lower case, without a leading www."""
    host = _SCHEME_AND_WWW.sub("", url.lower()).split("/", 1)[0]
    return host.split(":", 1)[0]
