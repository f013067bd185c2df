"""The detector: each event type found and its look-alikes rejected, with explainable evidence."""

from __future__ import annotations

from datetime import timedelta

import pytest

from detect.samples import PUBLISHED
from sigwatch.detect import (
    DEFAULT_MIN_CONFIDENCE,
    DetectionIndex,
    PostInput,
    build_index,
    detect,
    load_watchlist_yaml,
)
from sigwatch.detect.detector import BOUNDED_POSITIVES


def fired(index: DetectionIndex, text: str, **fields: object) -> set[tuple[str, str]]:
    post = PostInput(id="p", text=text, published=PUBLISHED, **fields)  # type: ignore[arg-type]
    return {
        (d.entity, d.event) for d in detect(post, index) if d.confidence >= DEFAULT_MIN_CONFIDENCE
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Celestia (TIA) TGE is scheduled for December 3 at 14:00 UTC", {("Celestia", "tge")}),
        ("Introducing the Aptos (APT) token sale on Binance Launchpad!", {("Aptos", "tge")}),
        ("Arbitrum airdrop claim is live: check your eligibility now", {("Arbitrum", "airdrop")}),
        ("Binance Will List Celestia (TIA) with Seed Tag Applied", {("Celestia", "listing")}),
        ("$FARTCOIN is now live on Coinbase", {("Fartcoin", "listing")}),
        ("Celestia mainnet is live. Blocks are being produced.", {("Celestia", "mainnet")}),
        (
            "Aptos will unlock 11 million APT tokens worth $90M on December 12",
            {("Aptos", "unlock")},
        ),
        ("BTO SPY 450C 11/17 @ 1.20", {("SPY", "trade_call")}),
    ],
)
def test_each_event_type_is_detected(index, text, expected):
    assert fired(index, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "when TGE? Celestia team keeps quiet",  # a question
        "Celestia has no plans for a token generation event",  # a denial
        "Introducing Celestia (TIA) on Binance Launchpool! Farm TIA by staking BNB",  # farming
        "Beware of fake Arbitrum airdrop sites, the team never DMs first",  # scam warning
        "Hearing rumors that Coinbase could list Fartcoin soon",  # rumour
        "reminder to @binance to list $FARTCOIN!",  # a request
        "Fartcoin price soars 35% as Kraken lists FARTCOIN",  # price-led headline
        "Binance Will Add Aptos (APT) on Earn, Buy Crypto, Convert & Margin",  # product additions
        "Kraken will delist Fartcoin on December 1",  # a delisting
        "Arbitrum Mainnet 2.0 upgrade goes live",  # a version upgrade
        "Celestia testnet goes live for developers",  # a testnet
        "Safe lock-up extended: tokens locked for 3 years with a 1 year cliff",  # lock-up terms
        "STC? nah, still holding my SPY calls, 100% now",  # chatter, not an order
        "Happy third anniversary of the Celestia mainnet launch!",  # remembering a launch
        "Tokyo-listed Celestia Holdings reports record revenue",  # a stock listing
        "Staking ARB will unlock new features for Arbitrum users",  # a figurative unlock
        "Arbitrum quests unlock exclusive perks this season",  # rewards, not tokens
        "Celestia Day 30 of mainnet: blocks keep flowing",  # a recap
        "Arbitrum deploys on the Celestia mainnet",  # someone else's mainnet
        "The Arbitrum airdrop last year changed how we think about communities",  # a past event
    ],
)
def test_look_alike_texts_do_not_fire(index, text):
    assert fired(index, text) == set()


def test_the_exchange_is_the_venue_not_the_listed_entity(index):
    assert fired(index, "Kraken will list Arbitrum (ARB) tomorrow") == {("Arbitrum", "listing")}
    assert fired(index, "Binance Will List Optimism (OP) and Celestia (TIA)") == {
        ("Optimism", "listing"),
        ("Celestia", "listing"),
    }


def test_a_pair_names_its_base_symbol(index):
    text = "Binance Futures Will Launch USDⓈ-Margined ARBUSDT and TIAUSDT Perpetual Contracts"

    assert fired(index, text) == {("Arbitrum", "listing"), ("Celestia", "listing")}


def test_crypto_signal_pair_maps_to_the_base_entity(index):
    text = "#ETH/USDT LONG\nEntry: 3100 - 3050\nTargets: 3200 - 3300\nStop loss: 2950"

    (detection,) = detect(PostInput("p", text, published=PUBLISHED), index)

    assert (detection.entity, detection.event) == ("Ethereum", "trade_call")
    assert detection.trade is not None and detection.trade.direction == "long"
    assert detection.trade.entry == (3100.0, 3050.0) and detection.trade.stop == 2950.0


def test_an_unwatched_ticker_trade_call_names_the_ticker(index):
    assert fired(index, "BTO $pltr 4/4 90c @ 1.05") == {("PLTR", "trade_call")}


@pytest.mark.parametrize("quantity", ["1/3", "10", "25%", "2x", "half"])
def test_an_options_call_may_give_its_quantity_before_the_ticker(index, quantity):
    text = f"STC {quantity} TSLA 250c 6/21 @ 4.10"
    (detection,) = detect(PostInput("p", text, published=PUBLISHED), index)
    assert (detection.entity, detection.event) == ("TSLA", "trade_call")
    assert detection.trade is not None and detection.trade.strike == 250.0


def test_a_short_symbol_counts_only_with_context(index):
    assert fired(index, "ONE more exchange will list tokens today") == set()
    assert fired(index, "Kraken will list ONE token on Friday") == {("Harmony", "listing")}
    assert fired(index, "Kraken will list $ONE on Friday") == {("Harmony", "listing")}


def test_a_name_that_is_an_ordinary_word_needs_its_written_case(index):
    assert fired(index, "the safe listing of new tokens on Kraken is slow") == set()
    assert fired(index, "Safe (SAFE) will be listed on Kraken") == {("Safe", "listing")}


def test_look_alike_letters_and_full_width_forms_still_match(index):
    assert fired(index, "Ｋｒａｋｅｎ will list Аrbitrum (АRB)") == {("Arbitrum", "listing")}


def test_the_author_names_the_entity_of_a_first_person_announcement(index):
    text = "We will launch our mainnet in Q1 2026."

    assert fired(index, text, author="Celestia") == {("Celestia", "mainnet")}
    assert fired(index, text, author="someone") == set()


def test_every_detection_explains_itself(index):
    text = "Kraken will list Arbitrum (ARB) on December 3 at 14:00 UTC"

    (detection,) = detect(PostInput("p", text, published=PUBLISHED), index)

    assert detection.confidence == pytest.approx(
        min(1.0, max(0.0, sum(detection.features.values()))), abs=0.002
    )
    assert {"keyword", "entity_match", "proximity", "event_time"} <= set(detection.features)
    kinds = {span.kind for span in detection.spans}
    assert {"entity", "keyword", "time"} <= kinds
    for span in detection.spans:
        assert text[span.start : span.end] == span.text


def test_cancelling_cues_show_as_negative_features(index):
    post = PostInput(
        "p", "Kraken reportedly will list Arbitrum (ARB) on Friday", published=PUBLISHED
    )

    detections = detect(post, index)

    assert detections and detections[0].features["rumour"] < 0
    assert detections[0].confidence < DEFAULT_MIN_CONFIDENCE


def test_urgency_follows_the_event_time(index):
    def urgency(text: str) -> str:
        (detection,) = detect(PostInput("p", text, published=PUBLISHED), index)
        return detection.urgency

    assert urgency("Celestia TGE in 30 minutes") == "critical"
    assert urgency("$FARTCOIN is now live on Coinbase") == "critical"
    assert urgency("Celestia TGE today 16:00 UTC") == "high"
    assert urgency("Celestia TGE on Friday") == "medium"
    assert urgency("Celestia TGE in Q3 2026") == "low"


def test_live_language_about_a_later_time_takes_the_time(index):
    (detection,) = detect(
        PostInput("p", "Celestia TGE goes live in 3 days", published=PUBLISHED), index
    )
    assert detection.urgency == "medium"


def test_event_time_is_resolved_against_publication(index):
    post = PostInput("p", "Celestia TGE in 2 hours", published=PUBLISHED)

    (detection,) = detect(post, index)

    assert detection.event_time == PUBLISHED + timedelta(hours=2)


def test_watchlist_rules_can_switch_an_event_off_and_add_keywords():
    text = """
entities:
  - name: Celestia
    symbols: [TIA]
rules:
  listing:
    enabled: false
  tge:
    keywords: {strong: ["genesis drop"]}
"""
    index = build_index(load_watchlist_yaml(text))

    assert fired(index, "Kraken will list Celestia (TIA) today") == set()
    assert fired(index, "Celestia genesis drop happens on Friday") == {("Celestia", "tge")}


def test_a_post_without_event_words_is_dropped_early(index):
    assert detect(PostInput("p", "Arbitrum and Celestia communities meet in Lisbon"), index) == []


@pytest.mark.parametrize(
    ("text", "author"),
    [
        (
            "Trading: from 8:00 Apr 12 (UTC) | Pair: ZEC/USDT, ZEC/BTC",
            "Zcash Labs",
        ),  # "trading from"
        ("Zcash  Labs , mainnet is live", None),  # a name's words two spaces apart
        ("Zcash Labs: token - generation event on Friday", None),  # a keyword's words apart
    ],
)
def test_words_of_a_key_apart_across_punctuation_are_still_seen(text, author):
    # The pre-scan reads the text before runs of spaces are collapsed; it must not drop a post
    # whose only keyword or entity name has punctuation or extra spaces between its words.
    index = build_index(load_watchlist_yaml("entities:\n  - name: Zcash Labs\n"))

    found = detect(PostInput("p", text, author=author, published=PUBLISHED), index)

    assert [d.entity for d in found] == ["Zcash Labs"]


def test_a_cue_inside_the_subject_name_does_not_count_against_it():
    index = build_index(load_watchlist_yaml("entities:\n  - name: Rumor Labs\n"))

    (detection,) = detect(PostInput("p", "Rumor Labs mainnet is live?"), index)

    assert (detection.entity, detection.event) == ("Rumor Labs", "mainnet")
    assert "rumour" not in detection.features and detection.features["question"] < 0


def test_a_weak_detection_at_the_report_floor_is_still_returned():
    index = build_index(load_watchlist_yaml("entities:\n  - name: Rumor Labs\n"))

    (detection,) = detect(PostInput("p", "is Rumor Labs mainnet live?"), index)

    assert detection.confidence == pytest.approx(0.2)


def test_the_report_floor_bound_knows_every_feature_that_raises_a_score(index):
    # detect() skips a keyword whose best possible score is below the report floor; the bound
    # adds up BOUNDED_POSITIVES, so a new positive feature must be added there too.
    texts = [
        "Kraken will list Arbitrum (ARB) on December 3 at 14:00 UTC",
        "Introducing Celestia (TIA) on Binance HODLer Airdrops! https://arbitrum.io",
        "$FARTCOIN is now live on Coinbase",
        "Celestia mainnet is live. Blocks are being produced.",
    ]
    positives = {
        name
        for text in texts
        for detection in detect(PostInput("p", text, author="arbitrum"), index)
        for name, value in detection.features.items()
        if value > 0 and detection.event != "trade_call"
    }

    assert positives <= BOUNDED_POSITIVES
