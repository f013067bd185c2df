"""Trade-call grammar: options alert lines and crypto signal messages."""

from __future__ import annotations

import random

import pytest

from sigwatch.detect.tradecall import (
    _NOT_TICKERS,
    _PAIR_JOINED,
    _PAIR_SPLIT,
    base_symbol,
    find_pairs,
    parse_trade_call,
)


def test_options_line_fields():
    call = parse_trade_call("@everyone BTO $SPY 450C 11/17 @ 1.20 lotto")

    assert call is not None
    assert (call.action, call.ticker, call.direction, call.instrument) == (
        "BTO",
        "SPY",
        "long",
        "call",
    )
    assert (call.strike, call.expiry, call.price) == (450.0, "11/17", 1.2)


@pytest.mark.parametrize(
    ("line", "action", "direction", "instrument", "price"),
    [
        ("STC TSLA 3/21 300p @ 5.40 all out", "STC", "exit", "put", 5.4),
        ("STO QQQ 400p 6/7 @ 2", "STO", "short", "put", 2.0),
        ("BTC QQQ 400p 6/7 @ 1.1", "BTC", "exit", "put", 1.1),
        ("AVG AMD 5/2 150c @ .80, added more", "AVG", "long", "call", 0.8),
        ("STC META 0dte 600c .94 trim", "STC", "exit", "call", 0.94),
        ("BTO AAPL @ 190.5 shares", "BTO", "long", "stock", 190.5),
    ],
)
def test_action_codes(line, action, direction, instrument, price):
    call = parse_trade_call(line)

    assert call is not None
    assert (call.action, call.direction, call.instrument, call.price) == (
        action,
        direction,
        instrument,
        price,
    )


def test_btc_alone_is_bitcoin_not_buy_to_close():
    assert parse_trade_call("BTC is pumping hard today") is None


def test_signal_message_fields():
    text = "SOLUSDT SHORT\nLeverage: Cross 10x\nEntry 142.5\nTP1 140 TP2 137\nSL 145"

    call = parse_trade_call(text)

    assert call is not None
    assert (call.ticker, call.direction, call.instrument) == ("SOL", "short", "perp")
    assert call.entry == (142.5,) and call.stop == 145.0 and 137.0 in call.targets


def test_an_explicit_close_of_a_named_coin_is_a_call():
    call = parse_trade_call("Close position LINK by 14.2")

    assert call is not None and (call.ticker, call.direction) == ("LINK", "exit")


@pytest.mark.parametrize(
    "text",
    [
        "Close all trades",
        "#DOT/USDT Take-Profit target 2 reached, profit 50%",
        "caught a clean long, both targets hit",
        "100% profit now, holding runners",
    ],
)
def test_reports_and_chatter_are_not_calls(text):
    assert parse_trade_call(text) is None


def test_pairs_name_their_base():
    assert base_symbol("BTCUSDT") == "BTC"
    assert base_symbol("eth/usdt") == "ETH"
    assert base_symbol("1000PEPE-USDT") == "1000PEPE"
    assert [b for _, _, b in find_pairs("ARB/USDT and 1000CATUSDT, not USDT alone")] == [
        "ARB",
        "1000CAT",
    ]


def _pairs_by_scanning_everything(text: str) -> list[tuple[int, int, str]]:
    """find_pairs as defined: both pair patterns over the whole text, split pairs first."""
    found: list[tuple[int, int, str]] = []
    for match in _PAIR_SPLIT.finditer(text):
        base = match["base"]
        if base.upper() not in _NOT_TICKERS and not base.isdigit():
            found.append((match.start("base"), match.end("base"), base.upper()))
    for match in _PAIR_JOINED.finditer(text):
        base = match["base"]
        taken = any(start <= match.start("base") < end for start, end, _ in found)
        if not taken and not base.isdigit() and base not in _NOT_TICKERS:
            found.append((match.start("base"), match.end("base"), base))
    return sorted(found)


def test_pairs_are_found_as_scanning_the_whole_text_finds_them():
    rng = random.Random(5)
    pieces = ["ARB", "eth", "/", "_", "-", " ", "USDT", "usdc", "BTC", "#", "$", "x", "1000"]
    pieces += ["PERP", "\n", "a" * 16, "SOLANA", "İ"]
    texts = ["#ARB/USDT LONG", "$eth-usdt", "BTC_USDT", "ARB / USDT", "1000PEPE-USDT", "ARBUSDT"]
    texts += ["".join(rng.choices(pieces, k=rng.randint(1, 10))) for _ in range(30_000)]
    for text in texts:
        assert find_pairs(text) == _pairs_by_scanning_everything(text), repr(text)
