"""Detection throughput with 10,000 entities and the built-in rules, against two references.

Generates (seeded) a watchlist of realistic-looking projects — names, aliases, tickers, handles,
domains — and a mix of posts as a feed brings them: 94% ordinary news and tweets (a third naming
a watched project, some using event words without one), 4% hard negatives (rumours, denials,
price-led headlines, scam warnings, product additions) and 2% announcements and trade calls.
In the same run it measures:

- ``detect`` on every post (the product path: one automaton pass, and for the few candidate
  posts a second pass that keeps the hits, then the full analysis);
- a baseline that scans each post with one compiled regular expression per entity and one per
  keyword tier (how keyword alerting is usually done), on a sample of the posts;
- a bare scan: iterating the same automaton over the same lower-cased texts and doing nothing else.

    .venv/bin/python benchmarks/bench_detect.py [--entities 10000] [--posts 40000]

The last line printed is one JSON object: {"posts_per_s", "baseline_posts_per_s", "speedup",
"bare_scan_posts_per_s", "fraction_of_bare", "build_s", "automaton_mb"}.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import re
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from sigwatch.detect.detector import PostInput, build_index, detect
from sigwatch.detect.events import EVENT_TYPES
from sigwatch.detect.matcher import Matcher
from sigwatch.detect.rules import apply_overrides, builtin_rules
from sigwatch.detect.watchlist import Entity, Watchlist

SEED = 20260401
ORDINARY = 0.94  # shares of the generated posts; the rest are announcements and trade calls
HARD_NEGATIVES = 0.04
ONSETS = "b br c ch d dr f fl g gr h j k kr l m n p pl qu r s st t tr v w x z zk".split()
VOWELS = "a e i o u ai ea io ou y".split()
CODAS = "n r x s l m th k nd rk sh ng ra on ex is um".split()
SUFFIXES = ["", "", "", " Protocol", " Network", " Finance", " Chain", " Labs", " Swap", " AI"]
WORDS = (
    "market traders week bitcoin price analysts rally report fund investors regulators policy "
    "exchange volume users growth developers community update report says new record data "
    "billion million quarter demand supply support level resistance chart signal outlook "
    "bullish bearish macro inflation rates stocks gold dollar yields crypto defi nft wallet "
    "stablecoin payments bank adoption survey study team partnership integration feature"
).split()
NEWS = [
    "{A} {w1} {w2} as {w3} {w4} ahead of the {w5} {w6}",
    "Why {w1} {w2} could {w3} the {w4} in {w5}",
    "{w1} {w2}: {w3} {w4} {w5} {w6} for the first time since {year}",
    "gm. {w1} {w2} looking {w3} today, {w4} {w5} is {w6}",
    "{A} partners with {B} to bring {w1} {w2} to more {w3}",
    "Thread: what {w1} {w2} means for {w3} {w4} and {w5} holders 🧵",
    "{A} price {w1} 12% while {w2} {w3} {w4}",
    "listing season is here? {w1} {w2} {w3} says {w4}",
]
NEGATIVES = [
    "when {A} listing on binance? community keeps asking",
    "{A} is not listed on Coinbase and there are no plans to list it",
    "{A} price soars 30% after Kraken listing rumor",
    "Beware of fake {A} airdrop sites, we will never DM you",
    "{A} testnet goes live for developers next week",
    "Binance Will Add {A} ({S}) on Earn, Buy Crypto, Convert & Margin",
]
ANNOUNCEMENTS = [
    "Binance Will List {A} ({S}) with Seed Tag Applied",
    "Binance Futures Will Launch USDⓈ-Margined {S}USDT Perpetual Contract With up to 75x Leverage",
    "Introducing {A} ({S}) on Binance HODLer Airdrops!",
    "{A} mainnet is live. A new chapter begins today.",
    "{A} will unlock 25 million {S} tokens worth $40M on March 12",
    "{A} token generation event (TGE) is scheduled for tomorrow 14:00 UTC",
    "BTO {S} 4/18 120c @ 1.35",
    "#{S}/USDT LONG\nEntry: 1.20 - 1.24\nTargets: 1.30 - 1.38 - 1.45\nStop loss: 1.12",
]


def make_entities(count: int, rng: random.Random) -> list[Entity]:
    """Seeded pseudo-projects with unique names and tickers."""
    entities: list[Entity] = []
    names: set[str] = set()
    symbols: set[str] = set()
    while len(entities) < count:
        syllables = rng.randint(2, 3)
        stem = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(syllables))
        stem = (stem + rng.choice(CODAS)).capitalize()
        name = stem + rng.choice(SUFFIXES)
        if name.lower() in names:
            continue
        symbol = re.sub(r"[aeiouy]", "", stem.upper())[: rng.randint(3, 5)] or stem[:4].upper()
        while symbol in symbols or len(symbol) < 3:
            symbol = symbol[:4] + "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=2))
        names.add(name.lower())
        symbols.add(symbol)
        handle = stem.lower() + rng.choice(["", "_xyz", "hq", "labs", "fi"])
        entities.append(
            Entity(
                name=name,
                aliases=(stem,) if name != stem else (),
                symbols=(symbol,),
                handles=(handle,),
                domains=(f"{stem.lower()}.{rng.choice(['io', 'xyz', 'org', 'finance'])}",),
            )
        )
    return entities


def make_posts(count: int, entities: list[Entity], rng: random.Random) -> list[PostInput]:
    """94% ordinary posts, 4% hard negatives, 2% announcements and calls (a feed's mix).

    Lengths follow the labelled corpus (mean ~130 characters, median ~80): mostly headlines,
    some tweets of a few sentences with a link, some news items with a summary.
    """
    start = datetime(2026, 3, 1, tzinfo=UTC)
    posts = []
    for i in range(count):
        roll = rng.random()
        a = rng.choice(entities)
        if roll < ORDINARY:
            template = NEWS
        elif roll < ORDINARY + HARD_NEGATIVES:
            template = NEGATIVES
        else:
            template = ANNOUNCEMENTS
        sentences = [_sentence(rng.choice(template), a, entities, rng, named=roll >= ORDINARY)]
        extra = rng.choices((0, 1, 2, 3), weights=(0.6, 0.2, 0.12, 0.08))[0]
        sentences += [_sentence(rng.choice(NEWS), a, entities, rng) for _ in range(extra)]
        if extra and rng.random() < 0.5:
            sentences.append(f"https://t.co/{rng.getrandbits(40):x}")
        text = ("\n\n" if rng.random() < 0.4 else " ").join(sentences)
        posts.append(PostInput(id=str(i), text=text, published=start + timedelta(minutes=i)))
    return posts


def _sentence(
    template: str, a: Entity, entities: list[Entity], rng: random.Random, *, named: bool = False
) -> str:
    fields = {f"w{k}": rng.choice(WORDS) for k in range(1, 7)}
    subject = a.name if named or rng.random() < 0.3 else rng.choice(WORDS).capitalize()
    other = rng.choice(entities).name
    return template.format(A=subject, B=other, S=a.symbols[0], year=2021, **fields)


def baseline_detector(
    entities: list[Entity],
) -> tuple[list[re.Pattern[str]], list[re.Pattern[str]]]:
    """One compiled regex per entity (all its names) and one per event keyword tier."""
    entity_patterns = [
        re.compile(
            r"\b(?:" + "|".join(re.escape(n) for n in (e.name, *e.aliases, *e.symbols)) + r")\b",
            re.IGNORECASE,
        )
        for e in entities
    ]
    rules = builtin_rules()
    keyword_patterns = []
    for event in EVENT_TYPES:
        tiers: dict[str, list[str]] = {}
        for phrase, tier in rules[event].keywords.items():
            tiers.setdefault(tier, []).append(phrase)
        for phrases in tiers.values():
            keyword_patterns.append(
                re.compile(r"\b(?:" + "|".join(re.escape(p) for p in phrases) + r")\b", re.I)
            )
    return entity_patterns, keyword_patterns


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=40_000)
    parser.add_argument("--baseline-posts", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    rng = random.Random(SEED)
    entities = make_entities(args.entities, rng)
    posts = make_posts(args.posts, entities, rng)
    watchlist = Watchlist(entities=tuple(entities))

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    matcher = Matcher(entities, apply_overrides(builtin_rules(), {}))
    traced_mb = (tracemalloc.get_traced_memory()[0] - before) / 2**20
    tracemalloc.stop()
    automaton_mb = max(traced_mb, matcher.memory_bytes() / 2**20)
    del matcher

    started = time.perf_counter()
    index = build_index(watchlist)
    build_s = time.perf_counter() - started
    print(
        f"index: {len(entities):,} entities, {index.matcher.key_count:,} keys, "
        f"built in {build_s:.2f} s, automaton {automaton_mb:.1f} MB"
    )

    for post in posts[:200]:  # warm caches (fold tables, lexicons)
        detect(post, index)
    automaton = index.matcher.automaton
    lowered = [" " + post.text.lower() + " " for post in posts]
    # Rounds alternate between the two so that both see the same machine load; best of each.
    best = bare = float("inf")
    detections = 0
    for _ in range(args.rounds):
        gc.collect()
        started = time.perf_counter()
        for text in lowered:
            for _hit in automaton.iter(text):
                pass
        bare = min(bare, time.perf_counter() - started)
        gc.collect()
        started = time.perf_counter()
        detections = sum(len(detect(post, index)) for post in posts)
        best = min(best, time.perf_counter() - started)
    posts_per_s = rate(len(posts), best)
    bare_per_s = rate(len(posts), bare)
    print(
        f"detect:   {posts_per_s:>12,.0f} posts/s  ({len(posts):,} posts, "
        f"{detections:,} detections, best of {args.rounds})"
    )
    print(f"bare:     {bare_per_s:>12,.0f} posts/s  (automaton iteration only)")

    entity_patterns, keyword_patterns = baseline_detector(entities)
    sample = posts[: args.baseline_posts]
    started = time.perf_counter()
    for post in sample:
        found_entities = [p for p in entity_patterns if p.search(post.text)]
        found_keywords = [p for p in keyword_patterns if p.search(post.text)]
        del found_entities, found_keywords
    baseline_per_s = rate(len(sample), time.perf_counter() - started)
    print(
        f"baseline: {baseline_per_s:>12,.0f} posts/s  ({len(entity_patterns):,} entity + "
        f"{len(keyword_patterns)} keyword regexes per post, {len(sample)} posts)"
    )
    speedup = posts_per_s / baseline_per_s
    fraction = posts_per_s / bare_per_s
    print(f"speedup over baseline {speedup:,.0f}x, {fraction:.2f} of the bare scan rate")
    print(
        json.dumps(
            {
                "posts_per_s": round(posts_per_s),
                "baseline_posts_per_s": round(baseline_per_s, 1),
                "speedup": round(speedup, 1),
                "bare_scan_posts_per_s": round(bare_per_s),
                "fraction_of_bare": round(fraction, 3),
                "build_s": round(build_s, 3),
                "automaton_mb": round(automaton_mb, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
