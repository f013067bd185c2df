"""The built-in rule library: per event, keyword tiers and cancelling phrases; general cues.

Keywords are what make a post a candidate for an event and how strongly (tiers, see
``events.TIER_WEIGHTS``). Cancelling phrases of an event, and the general cues shared by all events
(negation, rumour, request, commentary, a long-past event, price-led headline, a plan without a
date, scam warning or security incident), lower the confidence when they occur in the same
sentence as the keyword. A watchlist's ``rules:``
mapping adds keywords and cancelling phrases, changes the threshold, or switches an event off.

Phrases are written in plain words; matching folds case and punctuation the way
``normalize.key_form`` does, so "pre-market" also matches "Pre Market" and "pre market".

Every phrase belongs to a named class of general announcement (or non-announcement) language —
"the event was called off", "talk about a lock-up rather than a release", "a definition" — and
earns its place by reading naturally in any post of its kind. None is lifted from one labelled
text or names one entity: the rules are measured on posts they have never seen. To teach the
detector a new kind of negative, add a class (or a synonym to a class), never the post's words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sigwatch.detect.events import EVENT_TYPES, TIER_WEIGHTS
from sigwatch.detect.normalize import key_form
from sigwatch.detect.watchlist import RuleOverride

_KEYWORDS: Final[Mapping[str, Mapping[str, tuple[str, ...]]]] = {
    "listing": {
        "strong": (
            "will list", "will be listed", "will be listing", "to be listed", "lists on",
            "listed on", "listed at", "just listed", "now listed", "has listed", "have listed",
            "announces the listing", "perpetual contract", "perpetual contracts", "pre market",
            "premarket", "will open trading", "open trading", "opens trading",
            "trading will start", "trading will open", "trading starts", "trading opens",
            "trading begins", "trading from",
            "now live on", "is live on", "are live on", "goes live on", "deposits open",
            "opens deposits", "open deposits", "listing is live", "listing on",
            "perps on", "perp on", "perpetuals on", "futures on",
        ),
        "medium": (
            "to list", "lists", "listed", "is listing", "listing of", "new listing",
            "listing will be", "listing time", "cex listing", "exchange listing", "dex listing",
            "spot trading",
            "margined", "innovation zone", "seed tag", "now available on", "will be available on",
            "now tradable", "will be tradable", "listing announcement", "add support for",
            "adds support for", "will support", "now supports",
        ),
        "weak": (
            "listing", "listings", "list", "perp", "perps", "perpetual", "perpetuals", "futures",
            "trading pair",
        ),
    },
    "airdrop": {
        "strong": (
            "airdropped", "airdropping", "hodler airdrops", "airdrop campaign", "airdrop event",
            "airdrop is live", "airdrop claim", "claim is live", "claim is now live",
            "claims are live", "claims are open", "claim window", "claim portal",
            "claiming is live",
            "eligibility checker", "check your eligibility", "snapshot will be taken",
            "snapshot date", "retroactive airdrop", "new airdrop", "airdrop coming",
            "announces airdrop", "announced an airdrop", "will airdrop", "to airdrop",
        ),
        "medium": ("airdrop", "airdrops", "snapshot", "eligibility", "megadrop"),
        "weak": ("eligible",),
    },
    "tge": {
        "strong": (
            "tge", "token generation event", "pre tge", "token sale", "initial public sale",
            "ido", "ieo", "token generation", "launches its token", "launch its token",
            "launches its native token", "token offering", "public token sale",
        ),
        "medium": ("public sale", "token launch", "launchpad", "ico", "presale", "token debut"),
        "weak": ("native token",),
    },
    "mainnet": {
        "strong": (
            "mainnet launch", "mainnet launches", "mainnet launched", "mainnet is live",
            "mainnet goes live", "mainnet went live", "mainnet is now live", "mainnet live",
            "launch the mainnet", "launch our mainnet", "launch its mainnet", "launches mainnet",
            "launched mainnet", "launching mainnet", "mainnet release", "releasing our mainnet",
            "release our mainnet", "hit mainnet", "hits mainnet", "mainnet debut",
            "blockchain goes live", "network goes live", "chain goes live", "blockchain is live",
            "network is live", "mainnet will launch", "mainnet is scheduled", "mainnet date",
            "mainnet will go live", "launches its mainnet", "launched its mainnet",
        ),
        # the launch phrases count only after a network word: "the X protocol will launch"
        "medium": ("mainnet", "will be launched", "will launch", "to launch", "will go live"),
    },
    "unlock": {
        "strong": (
            "token unlock", "token unlocks", "will unlock", "unlock on", "unlocks on",
            "to unlock", "unlock event", "unlocking of", "tokens will be released",
            "into circulation", "cliff unlock", "vested", "scheduled unlock", "will be unlocked",
        ),
        "medium": ("unlock", "unlocks", "will be released", "to release"),
        "weak": ("unlocked", "unlocking", "vesting", "release", "released"),
    },
}  # fmt: skip

# --- cancelling phrases, by class --------------------------------------------------------------

#: The event was called off (any event).
_CALLED_OFF: Final = (
    "cancels", "cancelled", "canceled", "cancellation", "calls off", "called off", "scraps",
    "scrapped", "abandons", "abandoned", "backs down", "backs out", "shelves", "shelved",
)  # fmt: skip
#: NFTs are not tokens: an NFT sale, listing or unlock is not the token event.
_NFT: Final = ("nft", "nfts")

#: Listing: leaving an exchange, not joining it.
_DELISTING: Final = ("delist", "delists", "delisted", "delisting", "removal")
#: Listing: company shares and exchange-traded products on stock exchanges (guideline rule 4).
_STOCK_LISTING: Final = (
    "etf", "etfs", "etp", "etps", "etn", "etns", "stock exchange", "nasdaq", "nyse", "spac", "ipo",
    "shares", "stock", "stocks", "publicly listed", "listed company", "listed firm",
    "shareholders", "earnings",
)  # fmt: skip
#: Listing: more products for a token an exchange already lists (guideline rule 4).
_PRODUCT_ADDITION: Final = (
    "on earn", "simple earn", "buy crypto", "convert", "margin", "isolated margin",
    "cross margin", "copy trading", "trading bots", "trading bot", "trading pairs",
    "new trading pairs", "feature", "features", "tool", "tools",
)  # fmt: skip
#: Listing: "list" as a noun, data sites that list every token, and talk about getting listed.
_LISTING_TALK: Final = (
    "list of", "watchlist", "coinmarketcap", "coingecko", "contract addresses",
    "listing process", "listing requirements", "listing platform", "listing fee",
    "listing fees", "gets listed", "getting listed", "get listed", "get it listed", "auto list",
)  # fmt: skip

#: Airdrop: warnings about fake airdrops (beside the general scam cues).
_AIRDROP_SCAM: Final = ("scam", "scams", "phishing")
#: Airdrop: who is left out of an airdrop, not the airdrop itself.
_EXCLUSION: Final = (
    "exclusion", "exclude", "excludes", "excluded", "bar", "barred", "disqualified", "filtered",
)  # fmt: skip
#: Airdrop: how airdrops are taxed.
_TAX: Final = ("tax", "taxes", "taxed", "taxable", "taxation")
#: Airdrop: talk about airdrops as a practice or a trend.
_AIRDROP_TALK: Final = ("farming", "airdrop hunters", "airdrop farmers", "meta", "narrative")

#: TGE: farming campaigns, not token sales (guideline rule 9).
_FARMING: Final = ("launchpool", "launch pool", "megadrop", "farm", "farming")
#: TGE: the TGE as a point of reference for something else ("unlocks 20% at TGE").
_TGE_AS_REFERENCE: Final = (
    "after the tge", "after tge", "post tge", "since tge", "on tge", "at tge",
)  # fmt: skip
#: TGE: hints, definitions, hypotheticals and statistics about TGEs in general.
_TGE_TALK: Final = (
    "signals", "hints", "teases", "what is", "glossary", "definition", "is the moment",
    "if the tge", "token launches", "tges", "median", "average",
)  # fmt: skip
#: TGE: what happened after a sale: results, dumps and their causes.
_TGE_AFTERMATH: Final = (
    "completes", "completed", "concluded", "results", "dump", "dumps", "due to",
)  # fmt: skip

#: Mainnet: networks that are not a first production launch (guideline rule 5).
_NOT_A_MAINNET_LAUNCH: Final = (
    "testnet", "testnets", "betanet", "devnet", "previewnet", "beta", "shadow fork", "fork",
    "hard fork", "upgrade", "upgrades", "shutting down", "shut down", "shutdown", "halted",
    "halt", "sunset", "migrate", "migration",
)  # fmt: skip
#: Mainnet: products and guides on someone's mainnet rather than the network's own launch.
_ON_A_MAINNET: Final = (
    "recap", "guide", "dapp", "dapps", "app", "webapp", "feature", "features", "staking",
    "validators", "deployment", "deploy", "deployed", "support for",
)  # fmt: skip

#: Unlock: lock-up terms rather than a release (guideline rule 7).
_LOCK_UP: Final = ("lockup", "lock up", "locked for", "extension", "extend", "extends")
#: Unlock: the figurative sense ("unlock value", "potential to be unlocked"); what directly
#: follows the word is checked by STRUCTURAL_CANCELS["unlock"] ("unlocks new features").
_FIGURATIVE_UNLOCK: Final = ("value", "potential", "rewards", "can be unlocked")
#: Unlock: tools and glossaries about unlocks in general.
_UNLOCK_TALK: Final = ("dashboard", "tracker", "cliffs")

_CANCELS: Final[Mapping[str, tuple[str, ...]]] = {
    "listing": (
        *_DELISTING, *_STOCK_LISTING, *_PRODUCT_ADDITION, *_LISTING_TALK, *_CALLED_OFF, *_NFT,
    ),
    "airdrop": (*_AIRDROP_SCAM, *_EXCLUSION, *_TAX, *_AIRDROP_TALK, *_CALLED_OFF),
    "tge": (
        *_FARMING, *_TGE_AS_REFERENCE, *_TGE_TALK, *_TGE_AFTERMATH, *_CALLED_OFF, *_NFT,
    ),
    "mainnet": (*_NOT_A_MAINNET_LAUNCH, *_ON_A_MAINNET, *_CALLED_OFF),
    "unlock": (*_LOCK_UP, *_FIGURATIVE_UNLOCK, *_UNLOCK_TALK, *_CALLED_OFF, *_NFT),
    "trade_call": (),
}  # fmt: skip

#: General cues: class -> (phrases, where they count relative to the keyword, contribution).
#: "near" counts a cue up to five words before the keyword, "before" anywhere earlier in its
#: sentence, "sentence" anywhere in its sentence.
CUES: Final[Mapping[str, tuple[tuple[str, ...], str, float]]] = {
    "negation": (
        (
            "not", "no", "never", "haven t", "hasn t", "didn t", "doesn t", "don t", "isn t",
            "aren t", "won t", "wasn t", "weren t", "can t", "cannot", "couldn t", "shouldn t",
            "wouldn t", "yet to", "no plans", "denies", "denied", "refutes", "refuted",
            "debunks", "hoax", "without",
        ),
        "near",
        -0.6,
    ),
    "rumour": (
        (
            "rumor", "rumors", "rumour", "rumours", "rumored", "reportedly", "allegedly",
            "speculation", "speculates", "hearing", "leak", "leaked", "leaks", "unconfirmed",
            "might", "could", "may", "possibly", "potential", "potentially", "likely", "chance",
            "expected", "expects", "anticipation", "predict", "predicts", "prediction", "eyes",
            "eyeing", "considering", "mulls", "plans to", "plan to", "hope", "hoping",
            "hopefully", "wish", "wonder", "imagine", "would", "should", "should ve", "if",
            "whether", "signals", "hints", "teases", "proposal", "proposes", "suggests", "wen",
            "when", "soon", "gonna", "someday", "one day",
        ),
        "sentence",
        -0.5,
    ),
    "request": (
        (
            "reminder", "please", "need to", "needs to", "ask", "asks", "asking", "asked",
            "petition", "want", "wants", "wanted", "forced to", "working to", "lobby",
            "should list", "let s", "pls", "plz", "calls to", "urges",
        ),
        "sentence",
        -0.55,
    ),
    "commentary": (
        (
            "since", "after", "following", "ahead of", "amid", "due to", "ago",
            "explains", "why", "how", "lesson", "review", "analysis", "example", "for example",
            "glossary", "such as", "compared", "than", "because", "instead", "recap", "imagine",
        ),
        "before",
        -0.45,
    ),
    # a long-past event or a record against history, wherever it is said: "in the first month
    # of its TGE 8 years ago", "the largest airdrop in history"
    "past": (
        (
            "years ago", "year ago", "months ago", "month ago", "weeks ago", "in history",
            "last year", "anniversary", "anniversaries",
        ),
        "sentence",
        -0.45,
    ),
    "price": (
        (
            "price", "prices", "soars", "soar", "soared", "surges", "surge", "surged", "jumps",
            "jumped", "rallies", "rallied", "spikes", "spike", "pumps", "pumped", "dumps",
            "falls", "fell", "drops", "dropped", "slumps", "plunges", "plunge", "climbs",
            "gains", "gain", "rises", "rose", "tumbles", "skyrockets", "uptrend", "downtrend",
            "fetches", "market cap",
        ),
        "sentence",
        -0.5,
    ),
    # hedges that a date in the same sentence answers ("prepares to launch its mainnet in Q2")
    "unscheduled": (
        (
            "prepares for", "prepare for", "preparing for", "prepares to", "prepare to",
            "preparing to", "gears up", "gearing up", "working on", "in the works",
            "coming soon", "plans", "planned", "planning",
        ),
        "sentence",
        -0.3,
    ),
    # scam warnings and security incidents: news of harm, not an announcement
    "scam": (
        (
            "scam", "scams", "scammer", "scammers", "phishing", "impersonating", "impersonator",
            "fraud", "fraudulent", "beware", "warns", "warning", "hack", "hacked", "hacker",
            "exploit", "exploited", "drain", "drains", "drained", "rug", "rugged", "fake",
            "flash loan", "flashloan", "stolen",
        ),
        "sentence",
        -0.7,
    ),
}  # fmt: skip

#: Listing phrases that only mean a listing when a known exchange is in the sentence
#: ("Coinbase will add support for X" is; "a wallet adds support for X" is not).
VENUE_DEPENDENT: Final = frozenset(
    key_form(p)
    for p in (
        "add support for", "adds support for", "will support", "now supports",
        "now available on", "will be available on", "now tradable", "will be tradable",
    )
)  # fmt: skip

#: Words that say a statement is an announcement, not talk.
ANNOUNCE_WORDS: Final = (
    "announce", "announces", "announced", "announcement", "introducing", "introduces",
    "officially", "official", "confirmed", "confirms", "reveals", "revealed", "unveils",
    "today", "honored to", "proud to", "excited to", "is live", "now live", "live now",
    "has launched", "is now", "scheduled", "set to", "has announced",
)  # fmt: skip

#: Words saying the event is happening now (urgency: critical).
LIVE_WORDS: Final = (
    "is live", "are live", "now live", "live now", "goes live", "went live", "just listed",
    "has listed", "have listed", "has launched", "just launched", "is now live", "listed on",
    "lists on", "now available", "is listing", "trading opens", "claim is live", "has begun",
    "launched", "is out", "hit mainnet", "hits mainnet",
)  # fmt: skip

#: Words that, right before or after a short symbol, show it is the token and not a word.
SYMBOL_CONTEXT_WORDS: Final = frozenset(
    (
        "token tokens coin coins perp perps perpetual futures spot holders price airdrop airdrops "
        "listing listed lists unlock unlocks mainnet tge usdt usdc busd usd btc eth pair long "
        "short staking network protocol chain"
    ).split()
)

#: Exchanges (and perpetual venues) known by name: in a listing they are the venue.
KNOWN_VENUES: Final = (
    "binance", "binance us", "binance futures", "binance wallet", "binance alpha", "coinbase",
    "coinbase international", "kraken", "okx", "okex", "bybit", "kucoin", "bitget", "gate",
    "gate io", "mexc", "huobi", "htx", "upbit", "bithumb", "robinhood", "crypto com", "gemini",
    "bitfinex", "bitmart", "xt", "xt com", "probit", "ascendex", "hotbit", "zbg", "ftx",
    "bitmex", "bitstamp", "poloniex", "lbank", "coinex", "bkex", "exmo", "whitebit", "crex24",
    "hyperliquid", "bingx", "phemex", "deribit", "bitso", "coinone", "korbit", "indodax",
    "wazirx", "bitvavo", "bitflyer", "coincheck", "bitpanda", "weex", "toobit", "blofin",
    "coinlist", "bitrue", "hitbtc", "bithumb global", "gopax", "bitkub", "btcturk", "paribu",
    "tokocrypto", "bitpay", "uphold", "etoro", "revolut", "webull", "aster",
)  # fmt: skip

#: Words of a trader's signal, grouped by their role in it.
TRADE_WORDS: Final[Mapping[str, tuple[str, ...]]] = {
    "action": ("bto", "stc", "sto", "btc", "avg", "buy to open", "sell to close"),
    "direction": ("long", "short", "longs", "shorts"),
    "level": (
        "entry", "entries", "entry zone", "entry point", "entry price", "target", "targets",
        "tp", "tp1", "take profit", "stop", "stop loss", "stoploss", "sl", "buy zone",
        "buy order", "leverage",
    ),
    "exit": ("close",),
}  # fmt: skip

_VERSION = r"(?:v\s?\d+(?:\s\d+)*|\d+\s\d+)"

#: Sentence-level patterns (on key text) that cancel one event whatever the keywords say.
#: Where a pattern can, it starts with a literal word and checks what comes before it after:
#: a regex finds a literal start quickly, while one that starts with a look-behind is tried at
#: every character ("unlock(?<= unlock)" is "(?<= )unlock").
STRUCTURAL_CANCELS: Final[Mapping[str, tuple[re.Pattern[str], ...]]] = {
    # a version number next to "mainnet", or a "Day 5 of mainnet" recap
    "mainnet": (
        re.compile(rf"mainnet {_VERSION}(?= )|(?<= ){_VERSION} (?:\w+ )?(?:goes live|mainnet)"),
        re.compile(r"(?<= )(?:v\d+|\d+ 0)(?= )"),
        re.compile(r"(?<= )day \d+(?= )|(?<= )\d+(?:st|nd|rd|th)? day of(?= )"),
        # deploying on someone else's mainnet: "on (the) Avalanche mainnet", "in mainnet"
        re.compile(
            r"(?<= )(?:(?:on|in|into|onto|between|across)(?: the)?|to the)"
            r"(?: (?!launch|our|its|their)\w+){0,3} mainnet(?= )(?! launch| is live| goes live)"
        ),
    ),
    # "unlock the/new/more X", "unlocks (exclusive) perks": a figurative unlock, not a release
    "unlock": (
        re.compile(
            r"unlock(?<= unlock)(?:s|ed|ing)? (?:the|a|an|new|more|your|our|higher|free|access"
            r"|value)(?= )"
        ),
        re.compile(
            r"unlock(?<= unlock)(?:s|ed|ing)? (?:\w+ )?(?:features?|achievements?|perks"
            r"|possibilities|opportunities|rewards|content|levels?|badges?)(?= )"
        ),
        re.compile(r"(?<= )(?:potential|value)(?: \w+){0,4} (?:to be )?unlocked"),
    ),
}

#: Like STRUCTURAL_CANCELS, on the folded text where punctuation still shows.
FOLDED_CANCELS: Final[Mapping[str, tuple[re.Pattern[str], ...]]] = {
    # "<place>-listed company", "Hong Kong-listed": a stock listing
    "listing": (re.compile(r"-(?<=\w-)listed\b", re.IGNORECASE),),
}


@dataclass(frozen=True)
class EventRule:
    """One event's compiled rule: keyword tiers, cancelling phrases and its own threshold."""

    event: str
    enabled: bool
    keywords: Mapping[str, str]
    cancels: tuple[str, ...]
    min_confidence: float | None = None


def builtin_rules() -> dict[str, EventRule]:
    """The built-in rules for every event type, keyed by event."""
    rules: dict[str, EventRule] = {}
    for event in EVENT_TYPES:
        keywords: dict[str, str] = {}
        for tier in ("weak", "medium", "strong"):  # a phrase listed twice keeps its best tier
            for phrase in _KEYWORDS.get(event, {}).get(tier, ()):
                keywords[key_form(phrase)] = tier
        cancels = tuple(key_form(phrase) for phrase in _CANCELS.get(event, ()))
        rules[event] = EventRule(event, True, keywords, cancels)
    return rules


def apply_overrides(
    rules: Mapping[str, EventRule], overrides: Mapping[str, RuleOverride]
) -> dict[str, EventRule]:
    """The rules with a watchlist's overrides applied: phrases added, thresholds, switches."""
    merged = dict(rules)
    for event, override in overrides.items():
        base = merged[event]
        keywords = dict(base.keywords)
        for tier, phrases in override.keywords.items():
            if tier not in TIER_WEIGHTS:
                continue
            for phrase in phrases:
                form = key_form(phrase)
                if form:
                    keywords[form] = tier
        cancels = base.cancels + tuple(f for f in map(key_form, override.cancels) if f)
        merged[event] = EventRule(
            event=event,
            enabled=override.enabled,
            keywords=keywords,
            cancels=cancels,
            min_confidence=override.min_confidence,
        )
    return merged


def cue_phrase_kinds(rules: Mapping[str, EventRule]) -> dict[str, tuple[str, ...]]:
    """Every cue, cancel, announcement and live phrase (key form) with its kinds.

    A kind is a CUES class, ``cancel:<event>``, ``announce`` or ``live``.
    """
    kinds: dict[str, set[str]] = {}

    def add(phrases: tuple[str, ...], kind: str) -> None:
        for phrase in phrases:
            form = key_form(phrase)
            if form:
                kinds.setdefault(form, set()).add(kind)

    for kind, (phrases, _scope, _weight) in CUES.items():
        add(phrases, kind)
    for event, rule in rules.items():
        add(rule.cancels, f"cancel:{event}")
    add(ANNOUNCE_WORDS, "announce")
    add(LIVE_WORDS, "live")
    return {phrase: tuple(sorted(found)) for phrase, found in kinds.items()}


def phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex finding any of the key-form phrases as whole words in key text."""
    forms = sorted({key_form(p) for p in phrases if key_form(p)}, key=len, reverse=True)
    if not forms:
        return None
    return re.compile(r"(?<= )(?:" + "|".join(re.escape(f) for f in forms) + r")(?= )")
