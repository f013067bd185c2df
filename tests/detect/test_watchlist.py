"""Watchlist YAML: strict loading with line numbers, nothing half-loaded, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigwatch.detect import (
    Entity,
    RuleOverride,
    Watchlist,
    WatchlistError,
    dump_watchlist_yaml,
    load_watchlist_yaml,
)
from sigwatch.errors import InvalidInput, SigwatchError


def test_valid_watchlist_loads_every_field():
    text = """
entities:
  - name: Arbitrum
    aliases: [Arbitrum One]
    symbols: [ARB]
    handles: ["@arbitrum"]
    domains: [arbitrum.io]
    tags: [l2]
    priority: 3
rules:
  listing:
    keywords: {strong: ["now tradable on"]}
    cancels: ["paper trading"]
    min_confidence: 0.7
  unlock:
    enabled: false
"""
    watchlist = load_watchlist_yaml(text)

    assert watchlist.entities == (
        Entity(
            "Arbitrum", ("Arbitrum One",), ("ARB",), ("@arbitrum",), ("arbitrum.io",), ("l2",), 3
        ),
    )
    assert watchlist.rules["listing"] == RuleOverride(
        keywords={"strong": ("now tradable on",)}, cancels=("paper trading",), min_confidence=0.7
    )
    assert watchlist.rules["unlock"].enabled is False


def test_invalid_yaml_names_its_line():
    with pytest.raises(WatchlistError) as raised:
        load_watchlist_yaml("entities:\n  - name: A\n    symbols: [X, Y\n  - name: B\n")

    assert raised.value.line is not None and raised.value.line >= 3
    assert "invalid YAML" in str(raised.value)


def test_unknown_field_is_named_with_its_line():
    with pytest.raises(WatchlistError) as raised:
        load_watchlist_yaml("entities:\n  - name: A\n    ticker: [X]\n")

    assert raised.value.line == 3
    assert "'ticker'" in str(raised.value) and "expected one of" in str(raised.value)


def test_watchlist_error_is_an_invalid_input_and_a_sigwatch_error():
    with pytest.raises(InvalidInput) as raised:
        load_watchlist_yaml("nonsense: 1\n")

    assert isinstance(raised.value, SigwatchError)
    assert raised.value.field == "watchlist"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("entities:\n  - name: A\n  - name: a\n", 3, "already used on line 2"),
        ("entities:\n  - aliases: [x]\n", 2, "missing its 'name'"),
        ("entities:\n  - name: A\n    priority: high\n", 3, "must be a number"),
        ("entities:\n  - name: A\n    symbols: ARB\n", 3, "must be a list"),
        ("entities:\n  - name: A\n    name: B\n", 3, "appears twice"),
        ("entities: []\nrules:\n  launch: {}\n", 3, "unknown field 'launch'"),
        ("entities: []\nrules:\n  tge:\n    min_confidence: 2\n", 4, "between 0 and 1"),
        ("", 1, "empty"),
    ],
)
def test_format_errors_say_where_and_why(text, line, words):
    with pytest.raises(WatchlistError) as raised:
        load_watchlist_yaml(text)

    assert raised.value.line == line
    assert words in raised.value.reason


def test_symbols_that_look_like_booleans_or_numbers_stay_text():
    watchlist = load_watchlist_yaml("entities:\n  - name: Ontology\n    symbols: [ON, NO, 1000]\n")

    assert watchlist.entities[0].symbols == ("ON", "NO", "1000")


def test_dump_then_load_gives_the_same_watchlist():
    watchlist = Watchlist(
        entities=(
            Entity("Act I: The AI Prophecy", aliases=("Act I",), symbols=("ACT", "ON")),
            Entity("Safe", symbols=("SAFE",), priority=2),
        ),
        rules={"tge": RuleOverride(enabled=False, cancels=("launchpool",))},
    )

    assert load_watchlist_yaml(dump_watchlist_yaml(watchlist)) == watchlist


def test_shared_corpus_watchlist_imports_as_it_is(labelled_dir: Path):
    watchlist = load_watchlist_yaml((labelled_dir / "watchlist.yaml").read_text(encoding="utf-8"))

    names = [entity.name for entity in watchlist.entities]
    assert len(names) > 100 and len(set(names)) == len(names)
