"""The words around a keyword that raise or lower confidence: sentences, cues and cancels.

Computed once per candidate post and only on demand: sentence bounds (in folded offsets and in
key_text word numbers), the general cues of ``rules.CUES``, each event's cancelling phrases and
structural cancels, announcement words, "live now" words (all found by the automaton's pass), and
the time expressions of the text. Each piece is computed on first use and kept (plain attributes
rather than ``functools.cached_property``, whose per-instance lock costs more than most of the
pieces themselves).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sigwatch.detect.mentions import KeyHit
from sigwatch.detect.normalize import NormalizedText
from sigwatch.detect.rules import (
    CUES,
    FOLDED_CANCELS,
    STRUCTURAL_CANCELS,
)
from sigwatch.detect.timeexpr import TimeExpression, find_time_expressions

# Sentence boundaries: a run of . ! ? before a space, quote, bracket or the end; a line break; a
# slash or bullet between spaces. Found by looking at each of these characters (see _boundaries).
_BOUNDARY_CHARS: Final = re.compile(r"[.!?/•\n]")
_AFTER_FULL_STOP: Final = frozenset("\"')]")
_SEPARATORS: Final = frozenset("/•")
# A line break inside a sentence ("reminder to @a,\n@b and @c\nto list $X") is no boundary: the
# line before ends with a comma or "&", or the next one opens with a joining word.
_JOINING_LINE: Final = re.compile(r"[ \t]*(?:to|and|or|with|for|of|the|by|on|via|&)\b")
_DATE_WORDS: Final = re.compile(
    r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d|\d(?:st|nd|rd|th)?\s+"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)|\bq[1-4]\b|\bh[12]\b|\b20\d\d\b"
    r"|\b(?:today|tomorrow|tonight|next week|next month|monday|tuesday|wednesday|thursday"
    r"|friday|saturday|sunday)\b|\bquarter\b|\bin \d+ (?:hours?|days?|weeks?)\b"
)
_DIGIT: Final = re.compile(r"\d")
# The _DATE_WORDS alternatives that need no digit contain one of these (in lower case).
_UNDATED_DATE_WORDS: Final = (
    "today", "tonight", "tomorrow", "next week", "next month", "day", "quarter",
)  # fmt: skip
# A clause break: a comma, semicolon, bar or dash, or a hyphen between spaces.
_CLAUSE_BREAK_CHARS: Final = re.compile(r"[,;|–—-]")
_PERCENT: Final = re.compile(r"\d\s?%")


@dataclass(slots=True)
class Sentence:
    """A sentence: folded offsets, first and last key_text word numbers, and its question mark."""

    start: int
    end: int
    first_word: int
    last_word: int
    question: bool
    index: int = 0  # its place among the post's sentences


@dataclass(slots=True)
class Cue:
    """A cue or cancelling phrase found in the text: its class, words and place."""

    kind: str  # a CUES class, "cancel" or "structure"
    phrase: str
    word: int
    start: int  # folded offsets
    end: int


def _boundaries(folded: str) -> list[tuple[int, int]]:
    """The sentence boundaries of a text as (start, end), in order, without overlaps.

    The same as matching ``[.!?]+(?=[\\s"')\\]]|$)|\\s[/•]\\s|\\n`` left to right, at a
    fraction of the cost: the pattern has no literal start, so a regex tries it at every
    character, while these characters are few.
    """
    found: list[tuple[int, int]] = []
    size = len(folded)
    taken = 0  # the end of the last boundary: a boundary cannot start before it
    for match in _BOUNDARY_CHARS.finditer(folded):
        at = match.start()
        if at < taken:
            continue
        char = folded[at]
        if char == "\n":
            # a line break followed by " / " is the start of a slash boundary
            if at + 2 < size and folded[at + 1] in _SEPARATORS and folded[at + 2].isspace():
                taken = at + 3
            else:
                taken = at + 1
            found.append((at, taken))
        elif char in _SEPARATORS:
            if at - 1 >= taken and folded[at - 1].isspace() and folded[at + 1 : at + 2].isspace():
                taken = at + 2
                found.append((at - 1, taken))
        else:
            end = at + 1
            while end < size and folded[end] in ".!?":
                end += 1
            if end == size or folded[end].isspace() or folded[end] in _AFTER_FULL_STOP:
                found.append((at, end))
            taken = end
    return found


def _clause_breaks(folded: str) -> list[int]:
    """Where clause breaks start: the same as matching ``[,;|–—]|\\s-\\s`` left to right."""
    found: list[int] = []
    taken = 0
    for match in _CLAUSE_BREAK_CHARS.finditer(folded):
        at = match.start()
        if folded[at] != "-":
            if at >= taken:
                found.append(at)
                taken = at + 1
        elif at - 1 >= taken and folded[at - 1].isspace() and folded[at + 1 : at + 2].isspace():
            found.append(at - 1)
            taken = at + 2
    return found


class Evidence:
    """Lazily computed evidence of one post."""

    __slots__ = (
        "text", "hits", "published", "words", "_sentences", "_sentence_starts", "_phrases",
        "_general", "_structural", "_times", "_date_words", "_clause_breaks", "_percents",
    )  # fmt: skip

    def __init__(
        self, text: NormalizedText, hits: Sequence[KeyHit], published: datetime | None
    ) -> None:
        self.text = text
        self.hits = hits
        self.published = published
        #: All key_text words.
        self.words = text.words
        self._sentences: list[Sentence] | None = None
        self._sentence_starts: list[int] = []
        self._phrases: dict[str, list[Cue]] | None = None
        self._general: dict[int, list[Cue]] = {}
        self._structural: dict[str, list[Cue]] = {}
        self._times: list[TimeExpression] | None = None
        self._date_words: dict[int, bool] = {}
        self._clause_breaks: list[int] | None = None
        self._percents: list[int] | None = None

    @property
    def sentences(self) -> list[Sentence]:
        """The sentences of the post in order; a title line is a sentence of its own."""
        if self._sentences is None:
            self._sentences = self._find_sentences()
            self._sentence_starts = [s.first_word for s in self._sentences]
        return self._sentences

    def _find_sentences(self) -> list[Sentence]:
        folded = self.text.folded
        word_starts = self.text.word_starts
        found: list[Sentence] = []
        start = 0
        for first, end in _boundaries(folded):
            if end - first == 1 and folded[first] == "\n" and self._line_continues(first):
                continue
            self._add_sentence(found, folded, word_starts, start, end)
            start = end
        self._add_sentence(found, folded, word_starts, start, len(folded))
        return found

    def _line_continues(self, newline: int) -> bool:
        folded = self.text.folded
        before = folded[max(newline - 80, 0) : newline].rstrip(" \t")
        if not before and newline > 80:  # a long run of blanks: look at the whole line
            before = folded[:newline].rstrip(" \t")
        if before.endswith((",", "&")):
            return True
        return _JOINING_LINE.match(folded, newline + 1) is not None

    @staticmethod
    def _add_sentence(
        found: list[Sentence], folded: str, word_starts: list[int], start: int, end: int
    ) -> None:
        # boundaries never split a word, so a piece without a word start has no word at all
        first = bisect_left(word_starts, start)  # the first word starting in the sentence
        last = bisect_left(word_starts, end) - 1
        if last < first:
            return
        found.append(
            Sentence(start, end, first, last, folded.find("?", start, end) >= 0, len(found))
        )

    def sentence_of(self, word: int) -> Sentence | None:
        """The sentence that holds a word, by word number."""
        sentences = self.sentences
        index = bisect_right(self._sentence_starts, word) - 1
        if index < 0:
            return None
        sentence = sentences[index]
        return sentence if word <= sentence.last_word else None

    def previous_sentence(self, sentence: Sentence) -> Sentence | None:
        """The sentence before this one, if any."""
        return self.sentences[sentence.index - 1] if sentence.index > 0 else None

    @property
    def phrases(self) -> dict[str, list[Cue]]:
        """Every cue, cancel, announcement and live phrase the automaton found, by kind."""
        if self._phrases is None:
            self._phrases = self._find_phrases()
        return self._phrases

    def _find_phrases(self) -> dict[str, list[Cue]]:
        found: dict[str, list[Cue]] = {}
        folded = self.text.folded
        key_text = self.text.key_text
        for hit in self.hits:
            kinds = hit.value[5]
            if not kinds:
                continue
            phrase = key_text[hit.key_start : hit.key_end]
            if phrase == "may" and folded[hit.start : hit.start + 1] == "M":
                continue  # the month, not the hedge
            for kind in kinds:
                found.setdefault(kind, []).append(Cue(kind, phrase, hit.word, hit.start, hit.end))
        return found

    def general_cues(self, sentence: Sentence) -> list[Cue]:
        """The general cues (``rules.CUES``) inside a sentence, class by class in CUES order."""
        found = self._general.get(sentence.index)
        if found is None:
            phrases = self.phrases
            first, last = sentence.first_word, sentence.last_word
            found = [
                cue
                for kind in CUES
                if kind in phrases
                for cue in phrases[kind]
                if first <= cue.word <= last
            ]
            self._general[sentence.index] = found
        return found

    def cancels(self, event: str) -> list[Cue]:
        """The event's cancelling phrases and structural cancels in the text."""
        found = self._structural.get(event)
        if found is None:
            found = list(self.phrases.get(f"cancel:{event}", ()))
            for pattern in STRUCTURAL_CANCELS.get(event, ()):
                for match in pattern.finditer(self.text.key_text):
                    start, end = self.text.folded_span(match.start(), match.end())
                    word = self.text.word_index(match.start())
                    found.append(Cue("structure", match.group(0).strip(), word, start, end))
            for pattern in FOLDED_CANCELS.get(event, ()):
                for match in pattern.finditer(self.text.folded):
                    word = self.text.word_at_folded(match.start())
                    found.append(Cue("structure", match.group(0), word, match.start(), match.end()))
            self._structural[event] = found
        return found

    @property
    def announcements(self) -> list[Cue]:
        """Announcement words ("announces", "introducing", "is live" …)."""
        return self.phrases.get("announce", [])

    @property
    def live_words(self) -> list[Cue]:
        """Words saying the event is happening now ("is live", "just listed" …)."""
        return self.phrases.get("live", [])

    @property
    def percents(self) -> list[int]:
        """Word numbers of percentages (a price move in a headline)."""
        if self._percents is None:
            folded = self.text.folded
            self._percents = (
                [self.text.word_at_folded(m.start()) for m in _PERCENT.finditer(folded)]
                if "%" in folded
                else []
            )
        return self._percents

    @property
    def times(self) -> list[TimeExpression]:
        """Time expressions resolved against the publication time."""
        if self._times is None:
            self._times = find_time_expressions(self.text.folded, self.published)
        return self._times

    def times_in(self, sentence: Sentence) -> list[TimeExpression]:
        """Time expressions inside a sentence."""
        return [t for t in self.times if sentence.start <= t.start < sentence.end]

    def has_date_words(self, sentence: Sentence) -> bool:
        """True when the sentence names a date or period, resolvable or not."""
        known = self._date_words.get(sentence.start)
        if known is None:
            known = self._date_words[sentence.start] = self._find_date_words(sentence)
        return known

    def _find_date_words(self, sentence: Sentence) -> bool:
        folded = self.text.folded
        # without a digit only a day word or "quarter" can name a date: look for those first
        if _DIGIT.search(folded, sentence.start, sentence.end) is None:
            piece = folded[sentence.start : sentence.end].lower()
            if not any(word in piece for word in _UNDATED_DATE_WORDS):
                return False
        return _DATE_WORDS.search(folded, sentence.start, sentence.end) is not None

    def same_clause(self, first: int, second: int) -> bool:
        """True when no comma, semicolon, bar or dash separates two folded offsets."""
        left, right = (first, second) if first <= second else (second, first)
        breaks = self._clause_breaks
        if breaks is None:
            breaks = self._clause_breaks = _clause_breaks(self.text.folded)
        index = bisect_right(breaks, left)
        return index >= len(breaks) or breaks[index] >= right

    def words_between(self, first: int, last: int) -> list[str]:
        """The key_text words numbered first..last (inclusive)."""
        return self.words[max(first, 0) : max(last + 1, 0)]
