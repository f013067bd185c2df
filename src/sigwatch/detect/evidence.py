"""The words around a keyword that raise or lower confidence: sentences, cues and cancels.

Computed once per candidate post and only on demand: sentence bounds (in folded offsets and in
key_text word numbers), the general cues of ``rules.CUES``, each event's cancelling phrases and
structural cancels, announcement words, "live now" words (all found by the automaton's pass), and
the time expressions of the text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Final

from sigwatch.detect.mentions import KeyHit
from sigwatch.detect.normalize import NormalizedText
from sigwatch.detect.rules import (
    CUES,
    FOLDED_CANCELS,
    STRUCTURAL_CANCELS,
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
_MAYBE_TIME: Final = re.compile(
    r"(?i)\d|\b(?:today|tonight|tomorrow|next|this week|this weekend|this month|quarter|jan|feb"
    r"|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|monday|tuesday|wednesday|thursday|friday|saturday"
    r"|sunday|an? (?:hour|day|week)|one|two|three|few)"
)
_PERCENT: Final = re.compile(r"\d\s?%")


@dataclass(slots=True)
class Sentence:
    """A sentence: folded offsets, first and last key_text word numbers, and its question mark."""

    start: int
    end: int
    first_word: int
    last_word: int
    question: bool


@dataclass(slots=True)
class Cue:
    """A cue or cancelling phrase found in the text: its class, words and place."""

    kind: str  # a CUES class, "cancel" or "structure"
    phrase: str
    word: int
    start: int  # folded offsets
    end: int


class Evidence:
    """Lazily computed evidence of one post."""

    def __init__(
        self, text: NormalizedText, hits: Sequence[KeyHit], published: datetime | None
    ) -> None:
        self.text = text
        self.hits = hits
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

    @cached_property
    def _phrases(self) -> dict[str, list[Cue]]:
        """Every cue, cancel, announcement and live phrase the automaton found, by kind."""
        found: dict[str, list[Cue]] = {}
        folded = self.text.folded
        for hit in self.hits:
            kinds = hit.value[5]
            if not kinds:
                continue
            phrase = self.text.key_text[hit.key_start : hit.key_end]
            if phrase == "may" and folded[hit.start : hit.start + 1] == "M":
                continue  # the month, not the hedge
            for kind in kinds:
                found.setdefault(kind, []).append(Cue(kind, phrase, hit.word, hit.start, hit.end))
        return found

    @cached_property
    def cues(self) -> dict[str, list[Cue]]:
        """General cues by class."""
        return {kind: self._phrases.get(kind, []) for kind in CUES}

    def cancels(self, event: str) -> list[Cue]:
        """The event's cancelling phrases and structural cancels in the text."""
        if event not in self._structural:
            found = []
            for pattern in STRUCTURAL_CANCELS.get(event, ()):
                for match in pattern.finditer(self.text.key_text):
                    start, end = self.text.folded_span(match.start(), match.end())
                    word = self.text.word_index(match.start())
                    found.append(Cue("structure", match.group(0).strip(), word, start, end))
            for pattern in FOLDED_CANCELS.get(event, ()):
                for match in pattern.finditer(self.text.folded):
                    word = self.text.word_at_folded(match.start())
                    found.append(Cue("structure", match.group(0), word, match.start(), match.end()))
            self._structural[event] = self._phrases.get(f"cancel:{event}", []) + found
        return self._structural[event]

    @cached_property
    def _structural(self) -> dict[str, list[Cue]]:
        return {}

    @cached_property
    def announcements(self) -> list[Cue]:
        """Announcement words ("announces", "introducing", "is live" …)."""
        return self._phrases.get("announce", [])

    @cached_property
    def live_words(self) -> list[Cue]:
        """Words saying the event is happening now ("is live", "just listed" …)."""
        return self._phrases.get("live", [])

    @cached_property
    def percents(self) -> list[int]:
        """Word numbers of percentages (a price move in a headline)."""
        return [self.text.word_at_folded(m.start()) for m in _PERCENT.finditer(self.text.folded)]

    @cached_property
    def times(self) -> list[TimeExpression]:
        """Time expressions resolved against the publication time."""
        if _MAYBE_TIME.search(self.text.folded) is None:
            return []  # cheap test first: most texts without a digit name no time
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
        breaks = self._clause_breaks
        index = bisect_right(breaks, left)
        return index >= len(breaks) or breaks[index] >= right

    @cached_property
    def _clause_breaks(self) -> list[int]:
        return [m.start() for m in _CLAUSE_BREAK.finditer(self.text.folded)]

    def words_between(self, first: int, last: int) -> list[str]:
        """The key_text words numbered first..last (inclusive)."""
        words = self.words
        return words[max(first, 0) : max(last + 1, 0)]

    @cached_property
    def words(self) -> list[str]:
        """All key_text words."""
        return self.text.key_text.split()
