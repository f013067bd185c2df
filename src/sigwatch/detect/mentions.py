"""Entity mentions: which automaton hits really name a watched entity, and how strongly.

A hit is only a candidate; its form's case policy decides (see ``matcher.EntityForm``):

- a cashtag or hashtag (``$OP``, ``#USELESS``) or a handle (``@arbitrum``) is a strong mention;
- a symbol in parentheses after a name (``Arbitrum (ARB)``) or in a pair (``ARB/USDT``,
  ``ARBUSDT``) is a strong mention;
- a symbol written in capitals counts when it is at least three characters and not an ordinary word;
  a short or word-like one (``OP``, ``ONE``, ``GAS``) only with context: a number before it
  ("44 million SUI"), a token word beside it ("OP token", "WIF perps"), or an event keyword next
  to it; in a text written all in capitals every symbol needs context;
- a name that is an ordinary word ("Safe", "Useless") counts as the watchlist writes it or in
  capitals; other names in any case.

Matches inside URLs are ignored, except an entity's own domain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from sigwatch.detect.matcher import (
    ANY_CASE,
    DOMAIN,
    HANDLE,
    SYMBOL_CASE,
    TITLE_CASE,
    EntityForm,
    KeyValue,
)
from sigwatch.detect.normalize import NormalizedText, key_form
from sigwatch.detect.rules import SYMBOL_CONTEXT_WORDS
from sigwatch.detect.tradecall import find_pairs
from sigwatch.detect.watchlist import Entity

_AMOUNT_WORDS: Final = frozenset("k m b mn bn million millions billion billions thousand".split())
_AUTHOR_SUFFIXES: Final = (
    "protocol", "network", "finance", "token", "coin", "labs", "foundation", "dao", "exchange",
    "chain", "hashgraph", "official", "io", "xyz", "app", "hq", "global", "fi", "money",
)  # fmt: skip
_NUMBER: Final = re.compile(r"^\$?\d[\d,.]*[kmb]?$")
_PER_THOUSAND: Final = re.compile(r"^1(?:0{3,})")
_QUOTE_HINTS: Final = ("usd", "btc", "eth", "bnb", "perp")  # cheap test before the pair regexes
_HANDLE_AT: Final = re.compile(r"[A-Za-z0-9_]+")


@dataclass(slots=True)
class EntityMention:
    """A place in the folded text that names an entity, with the evidence of how."""

    entity: int
    start: int  # folded-text offsets
    end: int
    word: int  # index of its first word in key_text
    last_word: int
    kind: str  # name, alias, symbol, handle, domain, cashtag, pair, author
    strength: float  # 0..1: how sure the words name this entity
    label: str  # what matched, e.g. "symbol ARB in parentheses"


@dataclass(slots=True)
class KeyHit:
    """An automaton hit located in the texts: key_text word range and folded offsets."""

    key_start: int
    key_end: int
    start: int
    end: int
    word: int
    last_word: int
    value: KeyValue


def locate_hits(text: NormalizedText, hits: Sequence[tuple[int, KeyValue]]) -> list[KeyHit]:
    """Every hit with its place in key_text and in the folded text."""
    folded_starts = text.word_starts
    words = text.words
    key_text = text.key_text
    located: list[KeyHit] = []
    append = located.append
    for end_index, value in hits:
        # a key ends at a word end (one space per word before it) and starts at a word start;
        # a word is as long in folded as in key_text
        last_word = key_text.count(" ", 0, end_index) - 1
        word = last_word - value[6]
        append(
            KeyHit(
                end_index - value[0] + 2,
                end_index,
                folded_starts[word],
                folded_starts[last_word] + len(words[last_word]),
                word,
                last_word,
                value,
            )
        )
    return located


def is_shouting(folded: str) -> bool:
    """True when most letters are capitals, so capitals say nothing about symbols."""
    letters = sum(map(str.isalpha, folded))
    if letters < 12:
        return False
    return sum(map(str.isupper, folded)) / letters > 0.7


def resolve_mentions(
    text: NormalizedText,
    hits: Sequence[KeyHit],
    keyword_words: frozenset[int],
    symbol_lookup: Mapping[str, tuple[int, ...]],
    *,
    with_pairs: bool,
) -> list[EntityMention]:
    """The entity mentions among the hits, plus pairs, longest first where they overlap."""
    folded = text.folded
    urls = [(start, end) for start, end, _ in text.urls]
    words = text.words
    shouting: list[bool] = []  # computed on first need
    found: list[EntityMention] = []
    for hit in hits:
        forms = hit.value[2]
        if not forms:
            continue
        start, end = hit.start, hit.end
        written = folded[start:end]
        before = folded[start - 1] if start > 0 else " "
        after = folded[end] if end < len(folded) else " "
        for form in forms:
            kind, strength, label = _judge_form(
                form, hit, folded, written, before, after, words, keyword_words, shouting
            )
            if strength <= 0.0:
                continue
            if form.policy != DOMAIN and any(a <= start < b for a, b in urls):
                continue
            found.append(
                EntityMention(
                    form.entity, start, end, hit.word, hit.last_word, kind, strength, label
                )
            )
    if with_pairs and pairs_possible(text.key_text):
        pairs = find_pairs(folded)
        # the quote asset of a pair (the USDT of RC/USDT) is not a mention of its own
        found = [m for m in found if not any(end <= m.start <= end + 2 for _, end, _ in pairs)]
        for start, end, base in pairs:
            for entity in _lookup_symbol(base, symbol_lookup):
                word = text.word_at_folded(start)
                found.append(
                    EntityMention(entity, start, end, word, word, "pair", 1.0, f"pair base {base}")
                )
    return _drop_contained(found) if len(found) > 1 else found


def pairs_possible(key_text: str) -> bool:
    """True when the text may name a trading pair (ARB/USDT, BTCUSDT): a quote asset is in it."""
    return any(quote in key_text for quote in _QUOTE_HINTS)


def _lookup_symbol(base: str, symbol_lookup: Mapping[str, tuple[int, ...]]) -> tuple[int, ...]:
    key = base.lower()
    if key in symbol_lookup:
        return symbol_lookup[key]
    stripped = _PER_THOUSAND.sub("", key)  # 1000PEPE is PEPE counted per thousand
    return symbol_lookup.get(stripped, ()) if stripped != key else ()


def _judge_form(
    form: EntityForm,
    hit: KeyHit,
    folded: str,
    written: str,
    before: str,
    after: str,
    words: Sequence[str],
    keyword_words: frozenset[int],
    shouting_once: list[bool],
) -> tuple[str, float, str]:
    """(kind, strength, label) of a form's hit; strength 0 when the case rules say no."""
    if form.policy == HANDLE:
        handle = _HANDLE_AT.match(folded, hit.start)
        if before == "@" and handle is not None and handle.group(0).lower() == form.written.lower():
            return "handle", 0.95, f"handle @{form.written}"
        return "", 0.0, ""
    if form.policy == DOMAIN:
        if written.lower() == form.written:
            return "domain", 0.85, f"domain {form.written}"
        return "", 0.0, ""
    if before == "@":
        return "handle", 0.9, f"{form.kind} {form.written} as @handle"
    if before in "$#":
        return "cashtag", 1.0, f"{form.kind} {form.written} as {before}{written}"
    if form.policy == ANY_CASE:
        exact = written == form.written or written.lower() == written == form.written.lower()
        strength = 1.0 if exact or written.isupper() or written.istitle() else 0.9
        return form.kind, strength, f"{form.kind} {form.written}"
    if not shouting_once and (written.isupper() or form.policy == SYMBOL_CASE):
        shouting_once.append(is_shouting(folded))
    if form.policy == TITLE_CASE:
        if written == form.written or (written.isupper() and not shouting_once[0]):
            return form.kind, 0.95, f"{form.kind} {form.written} written as such"
        if written.isupper() and _has_context(hit, words, keyword_words):
            return form.kind, 0.8, f"{form.kind} {form.written} in capitals, in context"
        return "", 0.0, ""
    capitals = written == form.written.upper() or (
        written == form.written and not form.written.islower()
    )
    if form.policy != SYMBOL_CASE or not capitals:
        return "", 0.0, ""
    if before == "(" and after == ")":
        return form.kind, 1.0, f"{form.kind} {form.written} in parentheses"
    context = _has_context(hit, words, keyword_words)
    if not form.ambiguous and not shouting_once[0]:
        strength = (0.9 if form.kind == "name" else 0.75) + (0.1 if context else 0.0)
        return form.kind, strength, f"{form.kind} {written}"
    if context:
        return form.kind, 0.7, f"{form.kind} {written} with context"
    return "", 0.0, ""


def _has_context(hit: KeyHit, words: Sequence[str], keyword_words: frozenset[int]) -> bool:
    """A token word or event keyword beside the mention, or an amount before it."""
    previous = words[hit.word - 1] if hit.word >= 1 else ""
    following = words[hit.last_word + 1] if hit.last_word + 1 < len(words) else ""
    if previous in SYMBOL_CONTEXT_WORDS or following in SYMBOL_CONTEXT_WORDS:
        return True
    if previous in _AMOUNT_WORDS or _NUMBER.match(previous):
        return True
    return bool(keyword_words & {hit.word - 1, hit.last_word + 1})


def _drop_contained(mentions: list[EntityMention]) -> list[EntityMention]:
    """Keep the longest mention where spans overlap; equal spans for several entities all stay."""
    mentions.sort(key=lambda m: (m.start, -(m.end - m.start), -m.strength))
    kept: list[EntityMention] = []
    for mention in mentions:
        covered = any(
            k.start <= mention.start
            and mention.end <= k.end
            and (k.end - k.start) > (mention.end - mention.start)
            for k in kept
        )
        duplicate = any(
            k.entity == mention.entity and k.start == mention.start and k.end == mention.end
            for k in kept
        )
        if not covered and not duplicate:
            kept.append(mention)
    return kept


def author_keys(value: str) -> list[str]:
    """The lookup keys of an author, handle or entity name: bare, and without a generic suffix."""
    words = key_form(value.lstrip("@")).split()
    keys = ["".join(words)] if words else []
    while len(words) > 1 and words[-1] in _AUTHOR_SUFFIXES:
        words = words[:-1]
        keys.append("".join(words))
    joined = keys[0] if keys else ""
    for suffix in _AUTHOR_SUFFIXES:
        if joined.endswith(suffix) and len(joined) - len(suffix) >= 4:
            keys.append(joined[: -len(suffix)])
    return [k for k in keys if len(k) >= 2]


def build_author_lookup(entities: Sequence[Entity]) -> dict[str, int]:
    """Author key → entity index, from every name, alias, handle and domain (first one wins)."""
    lookup: dict[str, int] = {}
    for index, entity in enumerate(entities):
        forms = [entity.name, *entity.aliases, *entity.handles]
        forms += [domain.split(".")[0] for domain in entity.domains]
        for form in forms:
            for key in author_keys(form)[:1]:
                lookup.setdefault(key, index)
    return lookup


def resolve_author(author: str | None, lookup: Mapping[str, int]) -> int | None:
    """The entity an author is (its own account or site), if any."""
    if not author:
        return None
    for key in author_keys(author):
        if key in lookup:
            return lookup[key]
    return None
