"""The detector: a pure function of a post and a compiled watchlist with its rules.

``build_index`` compiles a watchlist once (the automaton, lookups and patterns); ``detect`` then
reads one post: a single automaton pass over its normalised words finds every entity term and event
keyword, and a post with no event keyword (and no trade-call words) ends there, having built
nothing but the list of hits. Only candidate posts get the expensive work, cheapest first: the trade
call grammar, the keywords and their sentence cues, then, for a keyword that could still reach the
report floor whatever its subject turns out to be (a question, a denial or a scam warning cannot),
the entity case and context rules, the scoring and the time expressions. Sentiment is not
detection: callers score it (``sentiment.sentiment_score``) for every post they keep.

For each event keyword the entities of its sentence compete to be its subject (a listing's venue
or an airdrop's recipient is not); the subject and the entities listed with it ("A (X) and B (Y)")
are scored from explainable features (see ``scoring``). A post that parses as a trade call is a
trade call and nothing else. Nothing here reads the clock, the network or a database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sigwatch.detect.events import EVENT_TYPES, TIER_WEIGHTS
from sigwatch.detect.evidence import Cue, Evidence, Sentence
from sigwatch.detect.matcher import (
    ANY_EVENT_BITS,
    ENTITY_BIT,
    EVENT_BITS,
    TRADE_BITS,
    VENUE_BIT,
    KeyValue,
    Matcher,
)
from sigwatch.detect.mentions import (
    EntityMention,
    KeyHit,
    build_author_lookup,
    locate_hits,
    pairs_possible,
    resolve_author,
    resolve_mentions,
)
from sigwatch.detect.normalize import (
    NormalizedText,
    collapse_spaces,
    key_form,
    scan_text_of,
    url_domain,
)
from sigwatch.detect.rules import (
    CUES,
    KNOWN_VENUES,
    VENUE_DEPENDENT,
    EventRule,
    apply_overrides,
    builtin_rules,
)
from sigwatch.detect.scoring import (
    ANNOUNCEMENT,
    BORROWED_SUBJECT,
    CANCEL,
    CASHTAG,
    ENTITY_WEIGHT,
    EVENT_TIME,
    OWN_ACCOUNT,
    QUESTION,
    ROLE,
    confidence,
    proximity,
    urgency,
)
from sigwatch.detect.timeexpr import TimeExpression
from sigwatch.detect.tradecall import TradeCall, parse_trade_call
from sigwatch.detect.watchlist import Watchlist

#: The product's default alert threshold: detections below it do not alert.
DEFAULT_MIN_CONFIDENCE: Final = 0.5
#: Detections below this are not returned at all (too weak to be worth showing).
REPORT_FLOOR: Final = 0.2

_SIGNAL_BITS: Final = TRADE_BITS["direction"] | TRADE_BITS["level"]
_TRADE_TRIGGER: Final = TRADE_BITS["action"] | TRADE_BITS["exit"]  # either alone may be a call
_MAY_MATTER: Final = ANY_EVENT_BITS | _TRADE_TRIGGER | TRADE_BITS["direction"]
_LAUNCH_WORDS: Final = frozenset(
    "launch launches launched launching live release released releasing debut debuts go goes went "
    "hit hits scheduled date start starts begin begins arrive arrives ship ships".split()
)
_HEAD_NOUNS: Final = frozenset("protocol network blockchain chain platform mainnet".split())
_NETWORK_LAUNCH: Final = frozenset(("will be launched", "will launch", "to launch", "will go live"))
_SUPPLY_WORDS: Final = frozenset(
    "token tokens supply coins worth vested vesting circulation million billion cliff".split()
)
_VENUE_PREPOSITIONS: Final = frozenset("on at via from by onto across".split())
_ROLE_PREPOSITIONS: Final = {
    "tge": frozenset("on via with from by".split()),
    "airdrop": frozenset("to into with from via between".split()),
    "mainnet": frozenset("on in to into onto via with from between across".split()),
    "unlock": frozenset("on in to into via with from between".split()),
}
_ACTIVE_LISTING: Final = (
    "will list", "lists", "to list", "is listing", "will be listing", "will add", "adds",
    "will launch", "futures will launch", "announces", "will open trading", "has listed",
    "just listed", "listed", "launches", "will support",
)  # fmt: skip
_SKIPPED_AFTER_VENUE: Final = frozenset(
    "exchange global futures com pro us international wallet the".split()
)
_QUOTE_WORDS: Final = re.compile(r"(?i)\b(?:usdt|usdc|busd|fdusd|perp)\b|\([^()]{1,24}\)|'s\b")
_COORDINATED: Final = re.compile(r"(?i)^[\s,&/+@#$_]*(?:and|&|\+|or)?[\s,&/+@#$_]*$")
_TICKER_AFTER: Final = re.compile(r"\s*\(\$?[A-Z0-9]{2,12}\)")
_NAMED_TOKEN: Final = re.compile(r"\(([A-Z0-9]{2,12})\)|\$([A-Za-z][A-Za-z0-9]{1,11})\b")
_QUOTE_KEYS: Final = ("usdt", "usdc", "busd", "perp")
_PRONOUN_START: Final = frozenset("it its they their this we our".split())
_AIRDROP_WORDS: Final = frozenset(("airdrop", "airdrops"))
_BARE_UNLOCK: Final = frozenset(("unlock", "unlocks"))
_CUE_SCOPES: Final = {kind: scope for kind, (_phrases, scope, _weight) in CUES.items()}
#: The features that can raise a score: _may_reach_floor adds each one's best value.
BOUNDED_POSITIVES: Final = frozenset(
    ("keyword", "entity_match", "proximity", "own_account", "cashtag", "announcement", "event_time")
)
_PRICE_LED_EVENTS: Final = frozenset(("tge", "airdrop", "listing", "mainnet", "unlock"))


@dataclass(frozen=True, slots=True)
class PostInput:
    """What the detector reads of a post."""

    id: str
    text: str
    author: str | None = None
    source: str | None = None
    published: datetime | None = None
    title: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Span:
    """A piece of the analysed text and what it matched (offsets into ``analysed_text``)."""

    start: int
    end: int
    text: str
    kind: str  # entity, keyword, cue, time, trade
    label: str


@dataclass(frozen=True)
class Detection:
    """One (entity, event) a post announces, with its confidence, urgency and evidence."""

    post_id: str
    entity: str
    event: str
    confidence: float
    urgency: str
    event_time: datetime | None
    spans: list[Span]
    features: dict[str, float]
    trade: TradeCall | None


@dataclass(frozen=True, slots=True)
class DetectionIndex:
    """A watchlist compiled for detection: automaton, rules, lookups. Build with build_index."""

    watchlist: Watchlist
    rules: Mapping[str, EventRule]
    matcher: Matcher
    venues: frozenset[int]
    author_lookup: Mapping[str, int]
    domain_lookup: Mapping[str, int]
    entity_names: tuple[str, ...] = field(default=())

    def threshold(self, event: str, default: float = DEFAULT_MIN_CONFIDENCE) -> float:
        """The alert threshold of an event: its rule's own, else the default given."""
        rule = self.rules.get(event)
        if rule is not None and rule.min_confidence is not None:
            return rule.min_confidence
        return default


def build_index(watchlist: Watchlist) -> DetectionIndex:
    """Compile a watchlist and the built-in rules (with its overrides) for detect()."""
    rules = apply_overrides(builtin_rules(), watchlist.rules)
    entities = watchlist.entities
    venue_keys = {key_form(v).replace(" ", "") for v in KNOWN_VENUES}
    venues = frozenset(
        index
        for index, entity in enumerate(entities)
        if any(
            key_form(form).replace(" ", "") in venue_keys for form in (entity.name, *entity.aliases)
        )
        or any(tag.lower() in {"exchange", "cex", "dex", "venue"} for tag in entity.tags)
    )
    domains = {
        domain.lower().removeprefix("www."): index
        for index, entity in enumerate(entities)
        for domain in entity.domains
    }
    return DetectionIndex(
        watchlist=watchlist,
        rules=rules,
        matcher=Matcher(entities, rules),
        venues=venues,
        author_lookup=build_author_lookup(entities),
        domain_lookup=domains,
        entity_names=tuple(entity.name for entity in entities),
    )


def analysed_text(post: PostInput) -> str:
    """The text detection reads and span offsets point into: the title, a blank line, the text."""
    if post.title and not post.text.startswith(post.title.strip()):
        return f"{post.title}\n\n{post.text}"
    return post.text


def detect(post: PostInput, index: DetectionIndex) -> list[Detection]:
    """Every (entity, event) the post announces with confidence >= REPORT_FLOOR, best first."""
    # The common path, kept lean: one pass over the cheapest form of the text that only ORs the
    # bit flags of what it finds (a plain loop beats reduce() over the few hits a post has), and
    # no object built before the exit.
    raw = analysed_text(post) if post.title else post.text
    scan = index.matcher.automaton.iter
    scan_text = scan_text_of(raw)
    mask = 0
    for _end, value in scan(scan_text):
        mask |= value[1]
    # (the first test inline: most posts have no flag that matters, and end here without a call)
    if not mask & _MAY_MATTER or not (
        _trade_possible(mask) or _events_possible(mask, scan_text, post, index)
    ):
        return []  # no event keyword with a subject, and no trade word
    # A candidate is scanned again in key_text form to keep its hits (cheaper than keeping
    # every post's), and that scan's flags are the exact ones.
    key_text = collapse_spaces(scan_text)
    hits = list(scan(key_text))
    mask = 0
    for _end, value in hits:
        mask |= value[1]
    trade = _trade_possible(mask)
    events = _events_possible(mask, key_text, post, index)
    if not trade and not events:
        return []
    analysis = _PostAnalysis(post, NormalizedText(raw, key_text), hits, index)
    return analysis.run(mask if events else 0, trade)


def _trade_possible(mask: int) -> bool:
    return bool(mask & _TRADE_TRIGGER) or (mask & _SIGNAL_BITS) == _SIGNAL_BITS


def _events_possible(mask: int, words: str, post: PostInput, index: DetectionIndex) -> bool:
    """An event needs a subject: an entity term, a pair (…USDT), or the author being an entity."""
    if not mask & ANY_EVENT_BITS:
        return False
    if mask & ENTITY_BIT:
        return True
    return any(quote in words for quote in _QUOTE_KEYS) or _own_entity(post, index) is not None


def _own_entity(post: PostInput, index: DetectionIndex) -> int | None:
    """The entity whose own account or site published the post, if any."""
    own = resolve_author(post.author, index.author_lookup)
    if own is None and post.url:
        own = index.domain_lookup.get(url_domain(post.url))
    return own


@dataclass(slots=True)
class _Anchor:
    event: str
    tier: str
    phrase: str
    hit: KeyHit
    # what holds for the anchor whatever its subject (see _PostAnalysis._context)
    sentence: Sentence | None = None
    cues: list[Cue] = field(default_factory=list)  # general cues, unless inside the subject
    cancels: list[Cue] = field(default_factory=list)  # a price-led "%" and the event's cancels
    bound: float = 1.0  # the best confidence any subject could reach (see _may_reach_floor)


@dataclass
class _Scored:
    entity: int
    event: str
    features: dict[str, float]
    spans: list[tuple[int, int, str, str]]  # folded offsets, kind, label
    time: TimeExpression | None
    live: bool
    value: float = 0.0


class _PostAnalysis:
    """The work done on one candidate post."""

    # set by run() once the post is not a trade call
    hits: list[KeyHit]
    evidence: Evidence
    cashtag_possible: bool  # a "$" or "#" is in the text
    pairs_possible: bool  # a quote asset is in the text, so a pair may name an entity
    entity_spans: list[tuple[int, int]]  # folded spans of the entity terms found
    venue_words: frozenset[int]
    author_entity: int | None
    mentions: list[EntityMention]

    def __init__(
        self,
        post: PostInput,
        text: NormalizedText,
        hits: Sequence[tuple[int, KeyValue]],
        index: DetectionIndex,
    ) -> None:
        self.post = post
        self.text = text
        self.index = index
        self.raw_hits = hits
        self.linked: frozenset[int] | None = None  # entities whose own site the post links
        self.announced: dict[int, bool] = {}  # sentence index -> holds an announcement word

    def run(self, mask: int, trade_possible: bool) -> list[Detection]:
        if trade_possible:
            call = parse_trade_call(self.text.folded)
            if call is not None:
                return self._finish([self._trade(call)], call)
        self.hits = locate_hits(self.text, self.raw_hits)
        self.evidence = Evidence(self.text, self.hits, self.post.published)
        folded = self.text.folded
        self.cashtag_possible = "$" in folded or "#" in folded
        self.pairs_possible = pairs_possible(self.text.key_text)
        self.entity_spans = [(h.start, h.end) for h in self.hits if h.value[2]]
        anchors = self._anchors(mask)
        if not anchors:
            return []
        self.author_entity = _own_entity(self.post, self.index)
        # An anchor that cannot reach the report floor whatever its subject (a question, a
        # denial, a scam warning …) needs no entity work: most hard negatives end here.
        hopeful = [a for a in anchors if self._context(a) and self._may_reach_floor(a)]
        if not hopeful:
            return []
        keyword_words = frozenset(
            word for a in anchors for word in range(a.hit.word, a.hit.last_word + 1)
        )
        self.mentions = resolve_mentions(
            self.text,
            self.hits,
            keyword_words,
            self.index.matcher.symbol_lookup,
            with_pairs=True,
        )
        best: dict[tuple[int, str], _Scored] = {}
        for anchor in hopeful:
            for mention, role, distance, how in self._subjects_of(anchor):
                key = (mention.entity, anchor.event)
                known = best.get(key)
                if known is not None and known.value >= anchor.bound:
                    continue  # this keyword cannot do better for the entity than one before it
                scored = self._score(anchor, mention, role, distance, how)
                if known is None or scored.value > known.value:
                    best[key] = scored
        return self._finish(list(best.values()), None)

    # --- keywords -------------------------------------------------------------------------

    def _anchors(self, mask: int) -> list[_Anchor]:
        anchors: list[_Anchor] = []
        self.venue_words = frozenset(h.word for h in self.hits if h.value[1] & VENUE_BIT)
        rules = self.index.rules
        for hit in self.hits:
            for keyword in hit.value[3]:
                event = keyword.event
                if not mask & EVENT_BITS[event] or not rules[event].enabled:
                    continue
                tier = self._adjust_tier(event, keyword.tier, keyword.phrase, hit)
                if tier is not None:
                    anchors.append(_Anchor(event, tier, keyword.phrase, hit))
        return _best_of_overlapping(anchors) if len(anchors) > 1 else anchors

    def _adjust_tier(self, event: str, tier: str, phrase: str, hit: KeyHit) -> str | None:
        """A keyword's tier after looking at its neighbours; None drops it."""
        if event == "listing":
            if phrase.endswith(" on") and phrase != "listed on":
                # "is live on Binance" is a listing; "goes live on mainnet" is not
                return tier if hit.last_word + 1 in self.venue_words else "weak"
            if phrase in VENUE_DEPENDENT:
                sentence = self.evidence.sentence_of(hit.word)
                in_sentence = sentence is not None and any(
                    sentence.first_word <= word <= sentence.last_word for word in self.venue_words
                )
                return tier if in_sentence else None
            return tier
        words = self.evidence.words
        if event == "mainnet":
            if phrase == "mainnet":
                before = words[max(hit.word - 3, 0) : hit.word]
                after = words[hit.last_word + 1 : hit.last_word + 4]
                return "weak" if _LAUNCH_WORDS.isdisjoint(before + after) else "strong"
            if phrase in _NETWORK_LAUNCH:
                before = words[max(hit.word - 3, 0) : hit.word]
                return None if _HEAD_NOUNS.isdisjoint(before) else tier
            return tier
        if event == "unlock" and ("releas" in phrase or tier == "weak"):
            nearby = words[max(hit.word - 5, 0) : hit.last_word + 6]
            if not any(w in _SUPPLY_WORDS for w in nearby):
                return None
        if event == "unlock" and phrase in _BARE_UNLOCK:
            # a token unlock names tokens or an amount ("$300m unlock"); "a huge unlock for
            # traders" without either is the figurative sense
            nearby = words[max(hit.word - 5, 0) : hit.last_word + 6]
            if not any(w in _SUPPLY_WORDS or w[:1].isdigit() for w in nearby):
                return None
        if event == "airdrop" and phrase in _AIRDROP_WORDS:
            following = hit.last_word + 1
            if following < len(words) and words[following][:1].isdigit():
                return "strong"  # "X airdrops 1.5 million tokens"
            if phrase == "airdrops":
                return "weak"  # the plural alone is talk about airdrops in general
        return tier

    # --- entities -------------------------------------------------------------------------

    def _candidates(self, anchor: _Anchor, sentence: Sentence) -> tuple[list[EntityMention], str]:
        """The mentions that may be the anchor's subject, and how they were found."""
        inside = [
            m
            for m in self.mentions
            if sentence.first_word <= m.word <= sentence.last_word
            and not (m.start >= anchor.hit.start and m.end <= anchor.hit.end)
        ]
        if inside:
            return inside, "sentence"
        first = self.evidence.words[sentence.first_word] if self.evidence.words else ""
        previous = self.evidence.previous_sentence(sentence)
        # "It will unlock on …" or a title followed by its details: the subject is named before
        title_follows = previous is not None and previous is self.evidence.sentences[0]
        if previous is not None and (first in _PRONOUN_START or title_follows):
            borrowed = [
                m for m in self.mentions if previous.first_word <= m.word <= previous.last_word
            ]
            if borrowed:
                return borrowed, "borrowed"
        non_venue = [m for m in self.mentions if m.entity not in self.index.venues]
        if self.author_entity is not None and not non_venue:
            hit = anchor.hit
            author = EntityMention(
                self.author_entity, hit.start, hit.end, hit.word, hit.last_word, "author", 0.6,
                f"author {self.post.author or self.post.url}",
            )  # fmt: skip
            return [author], "author"
        return [], "none"

    def _role_filter(
        self, event: str, mentions: list[EntityMention], sentence: Sentence
    ) -> list[tuple[EntityMention, bool]]:
        """Drop venues (and, for listings, the exchange doing the listing); flag other roles."""
        words = self.evidence.words
        venues = self.index.venues
        kept: list[tuple[EntityMention, bool]] = []

        def venue_name(m: EntityMention) -> bool:
            if m.entity not in venues or m.kind not in {
                "name",
                "alias",
                "handle",
                "domain",
                "author",
            }:
                return False
            # "Aster (ASTER) is now live on …": a ticker after the name makes it the token
            return _TICKER_AFTER.match(self.text.folded, m.end) is None

        for mention in mentions:
            previous = _previous_word(words, mention.word, sentence.first_word)
            if event == "listing":
                if venue_name(mention) or previous in _VENUE_PREPOSITIONS:
                    continue
                if self._is_active_lister(mention, mentions, sentence):
                    continue
                kept.append((mention, False))
            else:
                role = previous in _ROLE_PREPOSITIONS.get(event, frozenset())
                kept.append((mention, role and mention.kind != "author"))
        if event in {"airdrop", "tge", "unlock", "mainnet"}:
            others = [(m, r) for m, r in kept if not venue_name(m)]
            if others:
                kept = others
            elif kept and self._names_unknown_token(sentence):
                kept = []
        return kept

    def _is_active_lister(
        self, mention: EntityMention, mentions: list[EntityMention], sentence: Sentence
    ) -> bool:
        """True when the mention is the one listing something else: "XT will list WHIRL"."""
        words = self.evidence.words
        position = mention.last_word + 1
        while position <= sentence.last_word and words[position] in _SKIPPED_AFTER_VENUE:
            position += 1
        following = " ".join(words[position : position + 4])
        if not following.startswith(_ACTIVE_LISTING):
            return False
        if following.startswith(("lists on", "listed on", "listed at", "listed by")):
            return False
        return any(
            m.word > mention.last_word and m.entity != mention.entity for m in mentions
        ) or self._names_unknown_token(sentence)

    def _names_unknown_token(self, sentence: Sentence) -> bool:
        """True when the sentence names a token the watchlist does not know: "(FOO)", "$FOO"."""
        piece = self.text.folded[sentence.start : sentence.end]
        for match in _NAMED_TOKEN.finditer(piece):
            symbol = (match.group(1) or match.group(2)).lower()
            if symbol not in self.index.matcher.symbol_lookup:
                return True
        return False

    def _subjects(
        self, event: str, kept: list[tuple[EntityMention, bool]], anchor: _Anchor
    ) -> list[tuple[EntityMention, bool, int]]:
        """The anchor's subject (nearest fitting entity) and the entities listed with it."""
        nearest: dict[int, tuple[EntityMention, bool, int]] = {}
        for mention, role in kept:
            distance = _distance(mention, anchor.hit)
            current = nearest.get(mention.entity)
            if current is None or (role, distance) < (current[1], current[2]):
                nearest[mention.entity] = (mention, role, distance)
        if not nearest:
            return []
        ranked = sorted(nearest.values(), key=lambda item: (item[1], item[2], item[0].start))
        chosen = [ranked[0]]
        for item in sorted(ranked[1:], key=lambda item: item[0].start):
            if any(self._coordinated(item[0], other[0]) for other in chosen):
                chosen.append(item)
        return chosen

    def _coordinated(self, first: EntityMention, second: EntityMention) -> bool:
        """True when only "and", commas, symbols in parentheses or quote assets separate them."""
        left, right = (first, second) if first.start < second.start else (second, first)
        if right.start < left.end:
            return True
        gap = self.text.folded[left.end : right.start]
        if len(gap) > 60:
            return False
        return _COORDINATED.match(_QUOTE_WORDS.sub(" ", gap)) is not None

    # --- scoring --------------------------------------------------------------------------

    def _context(self, anchor: _Anchor) -> bool:
        """Find the anchor's sentence and the cues against it; False when it has no sentence."""
        evidence = self.evidence
        hit = anchor.hit
        sentence = anchor.sentence = evidence.sentence_of(hit.word)
        if sentence is None:
            return False
        cues = anchor.cues
        for cue in evidence.general_cues(sentence):
            scope = _CUE_SCOPES[cue.kind]
            if scope == "near" and not hit.word - 5 <= cue.word < hit.word:
                continue
            if scope == "before" and not cue.word < hit.word:
                continue
            if cue.kind == "unscheduled" and evidence.has_date_words(sentence):
                continue
            if cue.word > hit.last_word and not evidence.same_clause(hit.end, cue.start):
                continue
            cues.append(cue)
        first, last = sentence.first_word, sentence.last_word
        cancels = anchor.cancels
        if anchor.event in _PRICE_LED_EVENTS:
            for word in evidence.percents:
                if first <= word <= last and word < hit.word:
                    cancels.append(Cue("price", "%", word, hit.start, hit.start))
                    break
        for cue in evidence.cancels(anchor.event):
            overlaps_anchor = hit.start <= cue.start and cue.end <= hit.end
            if first <= cue.word <= last and not overlaps_anchor:
                cancels.append(cue)
        return True

    def _may_reach_floor(self, anchor: _Anchor) -> bool:
        """False when no subject could lift the anchor to the report floor.

        The bound adds every positive feature the post could give (an exact subject next to the
        keyword, its own account, a cashtag, an announcement word, a date) to the negative ones
        that hold whatever the subject is: the question mark, the cancels, and the cues that no
        entity name could contain (a cue inside the subject's own name does not count).
        """
        sentence = anchor.sentence
        assert sentence is not None
        bound = TIER_WEIGHTS[anchor.tier] + ENTITY_WEIGHT + proximity(0) + EVENT_TIME
        if self.author_entity is not None or self._linked_entities():
            bound += OWN_ACCOUNT
        if self.cashtag_possible:
            bound += CASHTAG
        if self._announced(sentence):
            bound += ANNOUNCEMENT
        if sentence.question:
            bound += QUESTION
        counted: set[str] = set()
        for cue in anchor.cues:
            if cue.kind not in counted and not self._maybe_in_subject(cue, anchor):
                counted.add(cue.kind)
                bound += CUES[cue.kind][2]
        for cue in anchor.cancels:
            name = "price" if cue.kind == "price" else "cancel"
            if name not in counted:
                counted.add(name)
                bound += CUES["price"][2] if name == "price" else CANCEL
        # confidence() rounds to three places: keep a margin so a rounded-up score is kept
        anchor.bound = bound + 0.001
        return anchor.bound >= REPORT_FLOOR

    def _maybe_in_subject(self, cue: Cue, anchor: _Anchor) -> bool:
        """True when some subject's span could hold the cue (so it may not count against it)."""
        if self.pairs_possible:
            return True
        hit = anchor.hit
        if hit.start <= cue.start < hit.end:  # the author stands in the keyword's place
            return True
        return any(start <= cue.start < end for start, end in self.entity_spans)

    def _subjects_of(self, anchor: _Anchor) -> list[tuple[EntityMention, bool, int, str]]:
        """The anchor's subjects: (mention, in another role, distance, how it was found)."""
        sentence = anchor.sentence
        assert sentence is not None
        mentions, how = self._candidates(anchor, sentence)
        if not mentions:
            return []
        kept = self._role_filter(anchor.event, mentions, sentence)
        return [
            (mention, role, distance, how)
            for mention, role, distance in self._subjects(anchor.event, kept, anchor)
        ]

    def _score(
        self, anchor: _Anchor, mention: EntityMention, role: bool, distance: int, how: str
    ) -> _Scored:
        event = anchor.event
        hit = anchor.hit
        sentence = anchor.sentence
        assert sentence is not None
        features: dict[str, float] = {
            "keyword": TIER_WEIGHTS[anchor.tier],
            "entity_match": round(ENTITY_WEIGHT * mention.strength, 3),
        }
        spans = [
            (mention.start, mention.end, "entity", mention.label),
            (hit.start, hit.end, "keyword", f"{event} {anchor.tier}: {anchor.phrase}"),
        ]
        if how == "sentence":
            features["proximity"] = proximity(distance)
        elif how == "borrowed":
            features["proximity"] = BORROWED_SUBJECT
        if mention.entity == self.author_entity:
            features["own_account"] = OWN_ACCOUNT
        elif self._links_own_domain(mention.entity):
            features["own_account"] = OWN_ACCOUNT
        if mention.kind == "cashtag":
            features["cashtag"] = CASHTAG
        if self._announced(sentence):
            features["announcement"] = ANNOUNCEMENT
        for cue in anchor.cues:
            if mention.start <= cue.start < mention.end or cue.kind in features:
                continue
            features[cue.kind] = CUES[cue.kind][2]
            spans.append((cue.start, cue.end, "cue", f"{cue.kind}: {cue.phrase}"))
        for cue in anchor.cancels:
            name = "price" if cue.kind == "price" else "cancel"
            if name not in features:
                features[name] = CUES["price"][2] if name == "price" else CANCEL
                spans.append((cue.start, cue.end, "cue", f"{name}: {cue.phrase}"))
        if sentence.question:
            features["question"] = QUESTION
        if role:
            features["role"] = ROLE
        if confidence(features) + EVENT_TIME < REPORT_FLOOR:
            return _Scored(mention.entity, event, features, spans, None, False, 0.0)  # sunk
        first = sentence.first_word
        live = any(
            first <= c.word <= sentence.last_word for c in self.evidence.live_words
        ) and "will" not in self.evidence.words_between(first, hit.word)
        time = None
        times = self.evidence.times_in(sentence)  # the costliest evidence: read last
        if times:
            time = min(times, key=lambda t: abs(t.start - hit.start))
            features["event_time"] = EVENT_TIME
            spans.append((time.start, time.end, "time", time.when.isoformat()))
        scored = _Scored(mention.entity, event, features, spans, time, live)
        scored.value = confidence(features)
        return scored

    def _linked_entities(self) -> frozenset[int]:
        """The entities whose own site the post links to."""
        if self.linked is None:
            lookup = self.index.domain_lookup
            domains = {url_domain(url) for _, _, url in self.text.urls}
            self.linked = frozenset(lookup[d] for d in domains if d in lookup)
        return self.linked

    def _links_own_domain(self, entity: int) -> bool:
        return entity in self._linked_entities()

    def _announced(self, sentence: Sentence) -> bool:
        """True when the sentence holds an announcement word ("announces", "is live" …)."""
        known = self.announced.get(sentence.index)
        if known is None:
            first, last = sentence.first_word, sentence.last_word
            known = any(first <= c.word <= last for c in self.evidence.announcements)
            self.announced[sentence.index] = known
        return known

    # --- trade calls ----------------------------------------------------------------------

    def _trade(self, call: TradeCall) -> _Scored:
        ids = self.index.matcher.symbol_lookup.get(call.ticker.lower(), ())
        entities = self.index.watchlist.entities
        entity = -1
        if ids:
            named = [i for i in ids if entities[i].name.upper() == call.ticker]
            entity = named[0] if named else max(ids, key=lambda i: (entities[i].priority, -i))
        if call.action in {"BTO", "STC", "STO", "BTC", "AVG"}:
            complete = call.strike is not None or call.expiry is not None or call.price is not None
            structure = 0.55 if complete else 0.4
        elif call.action == "OPEN":
            structure = 0.55 if call.targets and call.stop is not None else 0.45
        else:
            structure = 0.45
        features = {"keyword": structure, "entity_match": ENTITY_WEIGHT if entity >= 0 else 0.24}
        label = f"trade {call.action} {call.direction} {call.ticker}"
        spans = [(call.start, call.end, "trade", label)]
        scored = _Scored(entity, "trade_call", features, spans, None, True)
        scored.value = confidence(features)
        return scored

    # --- output ---------------------------------------------------------------------------

    def _finish(self, scored: list[_Scored], call: TradeCall | None) -> list[Detection]:
        kept = [s for s in scored if s.value >= REPORT_FLOOR]
        if not kept:
            return []
        names = self.index.entity_names
        detections = []
        for item in sorted(kept, key=lambda s: (-s.value, EVENT_TYPES.index(s.event))):
            if item.entity >= 0:
                entity = names[item.entity]
            else:
                entity = call.ticker if call is not None else "?"
            detections.append(
                Detection(
                    post_id=self.post.id,
                    entity=entity,
                    event=item.event,
                    confidence=item.value,
                    urgency=urgency(item.time, self.post.published, live=item.live),
                    event_time=item.time.when if item.time is not None else None,
                    spans=[self._span(*span) for span in item.spans],
                    features={k: round(v, 3) for k, v in item.features.items()},
                    trade=call if item.event == "trade_call" else None,
                )
            )
        return detections

    def _span(self, start: int, end: int, kind: str, label: str) -> Span:
        first, last = self.text.original_span(start, end)
        return Span(first, last, self.text.original[first:last], kind, label)


def _best_of_overlapping(anchors: list[_Anchor]) -> list[_Anchor]:
    """Of an event's keywords that overlap ("listed on" and "listed"), the best tier, longest."""
    ranked = sorted(
        anchors,
        key=lambda a: (-TIER_WEIGHTS[a.tier], -(a.hit.end - a.hit.start), a.hit.start),
    )
    kept: list[_Anchor] = []
    for anchor in ranked:
        if not any(
            k.event == anchor.event
            and k.hit.start < anchor.hit.end
            and anchor.hit.start < k.hit.end
            for k in kept
        ):
            kept.append(anchor)
    return kept


def _previous_word(words: Sequence[str], word: int, first_word: int) -> str:
    position = word - 1
    while position >= first_word and words[position] in {"the", "a", "an"}:
        position -= 1
    return words[position] if position >= first_word else ""


def _distance(mention: EntityMention, hit: KeyHit) -> int:
    """Words between a mention and a keyword (0 when adjacent or overlapping)."""
    if mention.last_word < hit.word:
        return hit.word - mention.last_word - 1
    if mention.word > hit.last_word:
        return mention.word - hit.last_word - 1
    return 0
