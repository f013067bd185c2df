"""One Aho-Corasick automaton over every entity name, alias, symbol, handle, domain and phrase.

Keys are written in key form (see ``normalize``) and padded with a space each side, and the text is
scanned in the same form, so a key only ever matches whole words, and one pass over the post finds
every entity term, event keyword, exchange name, trade word and cue or cancelling phrase at once.
Each key's value says what the key is (bit flags for a cheap "anything here?" test) and every term
it stands for: one key can be the symbol of two entities and a keyword at the same time. Build a
new matcher when the watchlist or the rules change; a matcher is never modified.

Most posts are only pre-scanned, in ``scan_text`` form (key_text before its runs of spaces are
collapsed, which is cheaper to make): there a key of several words may have its words two or three
spaces apart ("Trading: from" is "trading  from"), so each entity or event key of several words
is also added in those spellings, with the same value. They cannot match key_text, which never
holds two spaces in a row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import ahocorasick

from sigwatch.detect.commonwords import COMMON_WORDS
from sigwatch.detect.events import EVENT_TYPES
from sigwatch.detect.normalize import key_form
from sigwatch.detect.rules import KNOWN_VENUES, TRADE_WORDS, EventRule, cue_phrase_kinds
from sigwatch.detect.watchlist import Entity

# Bit flags of a key's value: what kinds of term the key stands for.
ENTITY_BIT: Final = 1
VENUE_BIT: Final = 2
CUE_BIT: Final = 1 << 16
SUPPORT_BIT: Final = 1 << 17
EVENT_BITS: Final = {event: 4 << index for index, event in enumerate(EVENT_TYPES)}
ANY_EVENT_BITS: Final = sum(EVENT_BITS.values())
TRADE_BITS: Final = {"action": 1 << 12, "direction": 1 << 13, "level": 1 << 14, "exit": 1 << 15}
#: The flags that decide whether a post is a candidate: the pre-scan must see all of them.
CANDIDATE_BITS: Final = ENTITY_BIT | ANY_EVENT_BITS | sum(TRADE_BITS.values())

# How an entity form must be written in the post to count (see EntityForm.policy).
ANY_CASE: Final = "any_case"
TITLE_CASE: Final = "title_case"
SYMBOL_CASE: Final = "symbol_case"
HANDLE: Final = "handle"
DOMAIN: Final = "domain"

_MONTH_ABBREVIATIONS: Final = frozenset(
    "jan feb mar apr may jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun".split()
)


@dataclass(frozen=True, slots=True)
class EntityForm:
    """One way an entity is written: its name, an alias, a symbol, a handle or a domain.

    ``policy`` is how the post must write it: ``any_case``; ``title_case`` (as the watchlist writes
    it, or in capitals — for names that are ordinary words); ``symbol_case`` (in capitals or as
    written, and for short or word-like ones only with context); ``handle`` (after an @);
    ``domain`` (with its dots).
    """

    entity: int
    kind: str  # name, alias, symbol, handle, domain
    written: str
    policy: str
    ambiguous: bool  # short or an ordinary word: needs context even in capitals


@dataclass(frozen=True, slots=True)
class KeywordForm:
    """An event keyword and its tier."""

    event: str
    tier: str
    phrase: str


#: A key's value: (key length with padding, bit flags, entity forms, keywords, trade group,
#: cue kinds — see rules.cue_phrase_kinds —, number of words after the first). A plain tuple:
#: the scan hands out one per hit, and indexing a tuple is the cheapest read there is.
KeyValue = tuple[
    int, int, tuple[EntityForm, ...], tuple[KeywordForm, ...], str | None, tuple[str, ...], int
]


def form_policy(written: str, kind: str) -> tuple[str, bool]:
    """The case policy of an entity form and whether it is ambiguous without context."""
    key = key_form(written)
    if kind == "handle":
        return HANDLE, False
    if kind == "domain":
        return DOMAIN, False
    words = key.split()
    ordinary = all(word in COMMON_WORDS or word in _MONTH_ABBREVIATIONS for word in words)
    if kind == "symbol":
        return SYMBOL_CASE, len(key) <= 2 or ordinary or key.isdigit()
    if len(words) > 1:
        return (TITLE_CASE if ordinary else ANY_CASE), False
    if len(key) <= 3 or (written.isupper() and ordinary):
        return SYMBOL_CASE, len(key) <= 2 or ordinary
    return (TITLE_CASE if ordinary else ANY_CASE), False


class Matcher:
    """The compiled automaton of a watchlist and rule set, with the lookups that go with it."""

    def __init__(self, entities: Sequence[Entity], rules: Mapping[str, EventRule]) -> None:
        terms: dict[str, list[Any]] = defaultdict(list)
        bits: dict[str, int] = defaultdict(int)
        symbols: dict[str, list[int]] = defaultdict(list)
        for index, entity in enumerate(entities):
            for kind, written in _entity_forms(entity):
                key = key_form(written)
                if not key:
                    continue
                policy, ambiguous = form_policy(written, kind)
                form = EntityForm(index, kind, written, policy, ambiguous)
                if form not in terms[key]:
                    terms[key].append(form)
                bits[key] |= ENTITY_BIT
                if kind == "symbol" or (kind == "name" and policy == SYMBOL_CASE):
                    if index not in symbols[key.replace(" ", "")]:
                        symbols[key.replace(" ", "")].append(index)
        for event, rule in rules.items():
            if not rule.enabled or event == "trade_call":
                continue
            for phrase, tier in rule.keywords.items():
                terms[phrase].append(KeywordForm(event, tier, phrase))
                # a weak keyword supports a detection but does not make a post a candidate
                bits[phrase] |= EVENT_BITS[event] if tier != "weak" else SUPPORT_BIT
        for venue in KNOWN_VENUES:
            bits[key_form(venue)] |= VENUE_BIT
        trade_groups: dict[str, str] = {}
        if rules.get("trade_call") is None or rules["trade_call"].enabled:
            for group, words in TRADE_WORDS.items():
                for word in words:
                    bits[key_form(word)] |= TRADE_BITS[group]
                    trade_groups[key_form(word)] = group
        cue_kinds = cue_phrase_kinds(rules)
        for phrase in cue_kinds:
            bits[phrase] |= CUE_BIT
        automaton = ahocorasick.Automaton()
        for key, flags in bits.items():
            found = terms.get(key, [])
            value: KeyValue = (
                len(key) + 2,
                flags,
                tuple(t for t in found if isinstance(t, EntityForm)),
                tuple(t for t in found if isinstance(t, KeywordForm)),
                trade_groups.get(key),
                cue_kinds.get(key, ()),
                key.count(" "),
            )
            automaton.add_word(f" {key} ", value)
            if " " in key and flags & CANDIDATE_BITS:
                for spelling in _spaced_out(key):
                    automaton.add_word(f" {spelling} ", value)
        automaton.make_automaton()
        self.automaton: Any = automaton
        self.key_count = len(bits)
        self.symbol_lookup: Mapping[str, tuple[int, ...]] = {
            key: tuple(ids) for key, ids in symbols.items()
        }

    def scan(self, key_text: str) -> list[tuple[int, KeyValue]]:
        """Every key found in a key_text, as (index of its last character, value)."""
        return list(self.automaton.iter(key_text))

    def memory_bytes(self) -> int:
        """The automaton's own estimate of its size in bytes."""
        return int(self.automaton.get_stats()["total_size"])


def _spaced_out(key: str) -> list[str]:
    """A key of several words with its words one, two or three spaces apart, but as written."""
    spellings = [""]
    for index, word in enumerate(key.split(" ")):
        gaps = (" ", "  ", "   ") if index else ("",)
        spellings = [f"{before}{gap}{word}" for before in spellings for gap in gaps]
    return [spelling for spelling in spellings if spelling != key]


def _entity_forms(entity: Entity) -> Iterable[tuple[str, str]]:
    yield "name", entity.name
    for alias in entity.aliases:
        yield "alias", alias
    for symbol in entity.symbols:
        yield "symbol", symbol
    for handle in entity.handles:
        yield "handle", handle.lstrip("@")
    for domain in entity.domains:
        yield "domain", domain.lower().removeprefix("www.")
