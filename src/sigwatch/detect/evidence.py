"""The words around a keyword that raise or lower confidence: sentences, cues and cancels.

Computed once per candidate post and only on demand: sentence bounds (in folded offsets and in
key_text word numbers), the general cues of ``rules.CUES``, each event's cancelling phrases and
structural cancels, announcement words, "live now" words, and the time expressions of the text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Final

from sigwatch.detect.normalize import NormalizedText
from sigwatch.detect.rules import (
    ANNOUNCE_WORDS,
    CUES,
    FOLDED_CANCELS,
    STRUCTURAL_CANCELS,
    EventRule,
    phrase_pattern,
)
from sigwatch.detect.timeexpr import TimeExpression, find_time_expressions

_BOUNDARY: Final = re.compile(r"[.!?]+(?=[\s\"')\]]|$)|\s[/•]\s|\n")
# A line break inside a sentence ("reminder to @a,\n@b and @c\nto list $X") is no boundary: the
# line before ends with a comma or "&", or the next one opens with a joining word.
_JOINING_LINE: Final = re.compile(r"[ \t]*(?:to|and|or|with|for|of|the|by|on|via|&)\b")
_DATE_WORDS: Final = re.compile(
    r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d|\d(?:st|nd|rd|th)?\s+"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)|\bq[1-4]\b|\bh[12]\b|\b20\d\d\b"
    r"|\b(?:today|tomorrow|tonight|next week|next month|monday|tuesday|wednesday|thursday"
    r"|friday|saturday|sunday)\b|\bquarter\b|\bin \d+ (?:hours?|days?|weeks?)\b"
)
_CLAUSE_BREAK: Final = re.compile(r"[,;|–—]|\s-\s")
_LIVE: Final = phrase_pattern(
    (
        "is live", "are live", "now live", "live now", "goes live", "went live", "just listed",
        "has listed", "have listed", "has launched", "just launched", "is now live", "listed on",
        "lists on", "now available", "is listing", "trading opens", "claim is live", "has begun",
        "launched", "is out", "hit mainnet", "hits mainnet",
    )
)  # fmt: skip
_PERCENT: Final = re.compile(r"\d\s?%")


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence: folded offsets, first and last key_text word numbers, and its question mark."""

    start: int
    end: int
    first_word: int
    last_word: int
    question: bool


@dataclass(frozen=True, slots=True)
class Cue:
    """A cue or cancelling phrase found in the text: its class, words and place."""

    kind: str  # a CUES class, "cancel" or "structure"
    phrase: str
    word: int
    start: int  # folded offsets
    end: int


class CuePatterns:
    """The compiled phrase patterns of the general cues and of each event's cancels."""

    def __init__(self, rules: Mapping[str, EventRule]) -> None:
        self.cues: dict[str, re.Pattern[str]] = {}
        for kind, (phrases, _scope, _weight) in CUES.items():
            pattern = phrase_pattern(phrases)
            if pattern is not None:
                self.cues[kind] = pattern
        self.cancels: dict[str, re.Pattern[str] | None] = {
            event: phrase_pattern(rule.cancels) for event, rule in rules.items()
        }
        announce = phrase_pattern(ANNOUNCE_WORDS)
        assert announce is not None
        self.announce = announce


class Evidence:
    """Lazily computed evidence of one post."""

    def __init__(
        self, text: NormalizedText, patterns: CuePatterns, published: datetime | None
    ) -> None:
        self.text = text
        self.patterns = patterns
        self.published = published

    @cached_property
    def sentences(self) -> list[Sentence]:
        """The sentences of the post in order; a title line is a sentence of its own."""
        folded = self.text.folded
        found: list[Sentence] = []
        start = 0
        for boundary in _BOUNDARY.finditer(folded):
            if boundary.group(0) == "\n" and self._line_continues(boundary.start()):
                continue
            self._add_sentence(found, start, boundary.end())
            start = boundary.end()
        self._add_sentence(found, start, len(folded))
        return found

    def _line_continues(self, newline: int) -> bool:
        folded = self.text.folded
        before = folded[:newline].rstrip(" \t")
        if before.endswith((",", "&")):
            return True
        return _JOINING_LINE.match(folded, newline + 1) is not None

    def _add_sentence(self, found: list[Sentence], start: int, end: int) -> None:
        piece = self.text.folded[start:end]
        if not any(c.isalnum() for c in piece):
            return
        first = self.text.word_at_folded(start)
        last = self.text.word_at_folded(end) - 1
        if last < first:
            return
        found.append(Sentence(start, end, first, last, "?" in piece))

    @cached_property
    def _sentence_starts(self) -> list[int]:
        return [s.first_word for s in self.sentences]

    def sentence_of(self, word: int) -> Sentence | None:
        """The sentence that holds a word, by word number."""
        index = bisect_right(self._sentence_starts, word) - 1
        if index < 0:
            return None
        sentence = self.sentences[index]
        return sentence if word <= sentence.last_word else None

    def previous_sentence(self, sentence: Sentence) -> Sentence | None:
        """The sentence before this one, if any."""
        index = self.sentences.index(sentence)
        return self.sentences[index - 1] if index > 0 else None

    def _find(self, kind: str, pattern: re.Pattern[str] | None) -> list[Cue]:
        if pattern is None:
            return []
        found = []
        key_text = self.text.key_text
        for match in pattern.finditer(key_text):
            start, end = self.text.folded_span(match.start(), match.end())
            phrase = match.group(0)
            if phrase == "may" and self.text.folded[start : start + 1] == "M":
                continue  # the month, not the hedge
            found.append(Cue(kind, phrase, self.text.word_index(match.start()), start, end))
        return found

    @cached_property
    def cues(self) -> dict[str, list[Cue]]:
        """General cues by class."""
        return {kind: self._find(kind, p) for kind, p in self.patterns.cues.items()}

    def cancels(self, event: str) -> list[Cue]:
        """The event's cancelling phrases and structural cancels in the text."""
        return self._cancels.get(event, [])

    @cached_property
    def _cancels(self) -> dict[str, list[Cue]]:
        found = {
            event: self._find("cancel", pattern) for event, pattern in self.patterns.cancels.items()
        }
        for event, patterns in STRUCTURAL_CANCELS.items():
            for pattern in patterns:
                for match in pattern.finditer(self.text.key_text):
                    start, end = self.text.folded_span(match.start(), match.end())
                    word = self.text.word_index(match.start())
                    found.setdefault(event, []).append(
                        Cue("structure", match.group(0).strip(), word, start, end)
                    )
        for event, patterns in FOLDED_CANCELS.items():
            for pattern in patterns:
                for match in pattern.finditer(self.text.folded):
                    word = self.text.word_at_folded(match.start())
                    found.setdefault(event, []).append(
                        Cue("structure", match.group(0), word, match.start(), match.end())
                    )
        return found

    @cached_property
    def announcements(self) -> list[Cue]:
        """Announcement words ("will", "announces", "introducing", "is live" …)."""
        return self._find("announce", self.patterns.announce)

    @cached_property
    def live_words(self) -> list[Cue]:
        """Words saying the event is happening now ("is live", "just listed" …)."""
        return self._find("live", _LIVE)

    @cached_property
    def percents(self) -> list[int]:
        """Word numbers of percentages (a price move in a headline)."""
        return [self.text.word_at_folded(m.start()) for m in _PERCENT.finditer(self.text.folded)]

    @cached_property
    def times(self) -> list[TimeExpression]:
        """Time expressions resolved against the publication time."""
        return find_time_expressions(self.text.folded, self.published)

    def times_in(self, sentence: Sentence) -> list[TimeExpression]:
        """Time expressions inside a sentence."""
        return [t for t in self.times if sentence.start <= t.start < sentence.end]

    def has_date_words(self, sentence: Sentence) -> bool:
        """True when the sentence names a date or period, resolvable or not."""
        return _DATE_WORDS.search(self.text.folded, sentence.start, sentence.end) is not None

    def same_clause(self, first: int, second: int) -> bool:
        """True when no comma, semicolon, bar or dash separates two folded offsets."""
        left, right = sorted((first, second))
        return _CLAUSE_BREAK.search(self.text.folded, left, right) is None

    def words_between(self, first: int, last: int) -> list[str]:
        """The key_text words numbered first..last (inclusive)."""
        words = self.words
        return words[max(first, 0) : max(last + 1, 0)]

    @cached_property
    def words(self) -> list[str]:
        """All key_text words."""
        return self.text.key_text.split()
