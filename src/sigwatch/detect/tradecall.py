"""Trade-call parser: options alert lines and crypto futures/spot signal messages.

Options alerts are one line each: an action code, a ticker, then optional expiry, strike with
``c``/``p``, price and notes — ``BTO SPY 450C 11/17 @ 1.20``, ``STC NVDA 4/27 205c @ 1.58 partial``,
``AVG KWEB 06/18 32c @1.2``. Codes: BTO (buy to open), STC (sell to close), STO (sell to open),
BTC (buy to close), AVG (add to a position).

Crypto signals are messages with a coin, a direction and levels — ``#SNX/USDT #SHORT Entry:
11.40 Targets: 11.1 - 10.8 Stop: 12``; a pair such as ``BTCUSDT`` or ``ETH/USDT`` names its base
coin. A message needs the coin, the direction and an entry, plus targets or a stop; "Close TRB"
style exits of a named coin count too. Reports ("target 2 reached"), closes without a coin and
chatter do not parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

#: Quote assets a pair may end with; the coin traded is what comes before.
QUOTES: Final = ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "PERP")

_ACTIONS: Final = {"BTO": "long", "AVG": "long", "STO": "short", "STC": "exit", "BTC": "exit"}
_NOT_TICKERS: Final = frozenset(
    (
        "BINANCE FUTURES FUTURE PERP PERPETUAL LONG SHORT ENTRY TARGET TARGETS STOP LOSS SL TP "
        "LEVERAGE CROSS ISOLATED SIGNAL SIGNALS CALL CALLS PUT USDT USDC BUSD USD BUY SELL CRYPTO "
        "SPOT PAIR ASSET COIN POSITION ALL TRADES TRADE ORDER LIMIT MARKET NEW VIP FREE CMP ZONE "
        "BYBIT KUCOIN OKX BITMEX MEXC GATE HUOBI BITGET EXCHANGE IMPORTANT EARLY UPDATE CLOSE "
        "THE AND FOR WITH NOW TAKE PROFIT PROFITS HOLD TO AT IN ON OF BY"
    ).split()
)

_NUMBER = r"\$?\s*(\d+(?:[.,]\d+)?|\.\d+)\s*\$?"
_OPTIONS_LINE = re.compile(
    r"^[^\w$#]*(?:@\w+[\s,:]+)*(?P<action>BTO|STC|STO|BTC|AVG)\b[\s:\-]*"
    # a quantity may come first: "half", "1/2", "10", "25%", "2x"
    r"(?:(?:half|all|some|more|rest|remaining|another|few|the|a|\d+/\d+|\d+%?|\d+x)\s+)*"
    r"(?P<tag>[$#]?)"
    r"(?P<ticker>[A-Za-z]{1,6})\b(?P<rest>.*)$",
    re.IGNORECASE,
)
_STRIKE = re.compile(
    r"(?<![\d/.])\$?(?P<strike>\d+(?:\.\d+)?)\s*(?P<kind>c|p|calls?|puts?)\b", re.I
)
_EXPIRY = re.compile(r"(?<![\d.])(?P<exp>\d{1,2}/\d{1,2}(?:/\d{2,4})?|0\s?dte|weekly)\b", re.I)
_AT_PRICE = re.compile(r"@\s*\$?(?P<price>\d*\.?\d+)")
_BARE_PRICE = re.compile(r"(?<![\w/.])\$?(?P<price>\d*\.\d+|\d+\.\d*)(?![\w/])")

_PAIR_JOINED = re.compile(
    r"(?<![A-Za-z0-9])[#$]?(?P<base>[A-Z0-9]{1,15}?)(?P<quote>USDT|USDC|BUSD|FDUSD|TUSD|PERP)"
    r"(?![A-Za-z0-9])"
)
_PAIR_SPLIT = re.compile(
    r"(?<![A-Za-z0-9])[#$]?(?P<base>[A-Za-z0-9]{1,15})\s?[/_-]\s?(?P<quote>USDT|USDC|BUSD|FDUSD"
    r"|TUSD|USD|BTC|ETH|BNB|PERP)(?![A-Za-z0-9])",
    re.IGNORECASE,
)
# Where a split pair's separator and quote asset are: a split pair's base (15 characters at
# most, with a "#" or "$" and a blank) ends just before the first of them.
_SPLIT_QUOTE = re.compile(
    r"[/_-]\s?(?:USDT|USDC|BUSD|FDUSD|TUSD|USD|BTC|ETH|BNB|PERP)(?![A-Za-z0-9])", re.IGNORECASE
)
_LONGEST_SPLIT_BASE = 17
_PERCENTAGE = re.compile(r"-?\s*\d{1,3}\s*%")
_VALUE = re.compile(r"\d+(?:[.,]\d+)?|\.\d+")
_CAPITALS_WORD = re.compile(r"(?<![\w#$])[A-Z][A-Z0-9]{1,9}(?![\w])")
_PERP_WORDS = re.compile(r"futures?|perp|leverage|\d+\s*x\b", re.IGNORECASE)
_DIRECTION = re.compile(r"(?<![A-Za-z])(?P<dir>long|short|buy|sell)(?![A-Za-z])", re.IGNORECASE)
_ENTRY = re.compile(
    r"(?:entry|entries|enter|buy(?:\s*order|\s*zone)?|open)\s*(?:zone|point|price|area|limit"
    r"|between|cmp|around|@)?\s*(?:zone|point|price|between|cmp)?[\s:\-–=@~]*" + _NUMBER,
    re.IGNORECASE,
)
_DIRECTION_NUMBER = re.compile(
    r"(?<![A-Za-z])(?:long|short)(?![A-Za-z])[\s:\-–=@]*(?:#\w+\s*)?" + _NUMBER, re.IGNORECASE
)
_TARGETS = re.compile(
    r"(?:targets?|tp\s?\d?|take[\s-]?profits?|sell(?:\s*targets)?)\s*(?:\d\s*(?=[:\-–=.)]))?"
    r"[^\d]{0,14}?"
    r"(?P<values>(?:\$?\s*(?:\d+(?:[.,]\d+)?|\.\d+)\s*\$?\s*(?:-?\s*\d{1,3}\s*%)?\s*[-–,/|\s]\s*)*"
    r"\$?\s*(?:\d+(?:[.,]\d+)?|\.\d+))",
    re.IGNORECASE,
)
_STOP = re.compile(
    r"(?:stop[\s-]?loss|stoploss|stol\s?loss|\bsl\b|\bstop\b)[^\d\n]{0,24}?"
    r"(?:\d+\s*(?:hr|h|hour|min|m|d|day)s?\b[^\d\n]{0,16}?)?" + _NUMBER,
    re.IGNORECASE,
)
_LEVERAGE = re.compile(
    r"(?:leverage|lev)\b[^\n\d]*(?P<lev>\d+\s*[x×]?(?:\s*-\s*\d+\s*[x×])?)", re.I
)
_LABELLED_TICKER = re.compile(
    r"(?:pair|asset|coin|symbol)\s*:\s*[#$]?(?P<ticker>[A-Za-z0-9]{2,12})\b", re.IGNORECASE
)
_TAGGED = re.compile(r"(?<![\w#$])[#$](?P<ticker>[A-Za-z][A-Za-z0-9]{1,11})\b")
_CLOSE = re.compile(
    r"^[^\w#$]*(?i:close)\s+(?i:position\s+|long\s+|short\s+)?(?i:on\s+)?[#$]?(?P<ticker>[A-Z0-9]{2,12})"
    r"(?:/?USDT)?\b",
    re.MULTILINE,
)


@dataclass(frozen=True)
class TradeCall:
    """A parsed trade call: what is traded, which way, and the levels given."""

    ticker: str
    action: str  # BTO, STC, STO, BTC, AVG for options; OPEN or CLOSE for signals
    direction: str  # long, short or exit
    instrument: str  # call, put, stock, perp or spot
    start: int  # where the ticker is written in the parsed text
    end: int
    strike: float | None = None
    expiry: str | None = None
    price: float | None = None
    entry: tuple[float, ...] = ()
    targets: tuple[float, ...] = ()
    stop: float | None = None
    leverage: str | None = None


def base_symbol(pair: str) -> str:
    """The coin of a pair written together or split: BTCUSDT, ETH/USDT, 1000PEPE-USDT → base."""
    text = pair.upper().lstrip("#$")
    split = _PAIR_SPLIT.fullmatch(text)
    if split:
        return split["base"].upper()
    joined = _PAIR_JOINED.fullmatch(text)
    if joined:
        return joined["base"]
    return text


def find_pairs(text: str) -> list[tuple[int, int, str]]:
    """Every trading pair in the text as (start, end of the base coin, base upper case)."""
    found: list[tuple[int, int, str]] = []
    # each pattern tries every position of the text: run it only where a match could start
    quote = _SPLIT_QUOTE.search(text)
    start = max(quote.start() - _LONGEST_SPLIT_BASE, 0) if quote else 0
    for match in _PAIR_SPLIT.finditer(text, start) if quote else ():
        base = match["base"]
        if base.upper() in _NOT_TICKERS or base.isdigit():
            continue
        found.append((match.start("base"), match.end("base"), base.upper()))
    for match in _PAIR_JOINED.finditer(text) if "USD" in text or "PERP" in text else ():
        if any(start <= match.start("base") < end for start, end, _ in found):
            continue
        base = match["base"]
        if base.isdigit() or base in _NOT_TICKERS:
            continue
        found.append((match.start("base"), match.end("base"), base))
    found.sort()
    return found


def parse_trade_call(text: str) -> TradeCall | None:
    """The trade call a message makes, or None when it makes none."""
    return _parse_options(text) or _parse_signal(text) or _parse_close(text)


def _number(raw: str) -> float | None:
    raw = raw.strip().strip("$").strip()
    if "," in raw and "." not in raw:
        head, _, tail = raw.partition(",")
        raw = f"{head}.{tail}" if head == "0" or len(tail) != 3 else head + tail
    try:
        return float(raw.replace(",", ""))
    except ValueError:
        return None


def _numbers(raw: str) -> tuple[float, ...]:
    cleaned = _PERCENTAGE.sub(" ", raw)
    values = (_number(v) for v in _VALUE.findall(cleaned))
    return tuple(v for v in values if v is not None)


def _parse_options(text: str) -> TradeCall | None:
    offset = 0
    for line in text.splitlines(keepends=True):
        match = _OPTIONS_LINE.match(line.rstrip("\r\n"))
        if match is not None:
            call = _options_call(match, offset)
            if call is not None:
                return call
        offset += len(line)
    return None


def _options_call(match: re.Match[str], offset: int) -> TradeCall | None:
    action = match["action"].upper()
    ticker = match["ticker"]
    if not ticker.isupper() and not match["tag"]:
        return None  # tickers are written in capitals unless tagged: "$spy"
    ticker = ticker.upper()
    if ticker in _NOT_TICKERS:
        return None
    rest = match["rest"]
    strike_match = _STRIKE.search(rest)
    expiry_match = _EXPIRY.search(rest)
    price_match = _AT_PRICE.search(rest)
    if action == "BTC" and not (strike_match or expiry_match or price_match):
        return None  # "BTC" alone is bitcoin, not "buy to close"
    instrument = "stock"
    strike = None
    if strike_match is not None:
        strike = float(strike_match["strike"])
        instrument = "put" if strike_match["kind"].lower().startswith("p") else "call"
    price = float(price_match["price"]) if price_match is not None else None
    if price is None:
        after = rest[strike_match.end() :] if strike_match is not None else rest
        bare = _BARE_PRICE.search(after)
        price = float(bare["price"]) if bare is not None else None
    return TradeCall(
        ticker=ticker,
        action=action,
        direction=_ACTIONS[action],
        instrument=instrument,
        start=offset + match.start("ticker"),
        end=offset + match.end("ticker"),
        strike=strike,
        expiry=expiry_match["exp"] if expiry_match is not None else None,
        price=price,
    )


def _signal_ticker(text: str, direction_at: int) -> tuple[int, int, str] | None:
    pairs = find_pairs(text)
    if pairs:
        return pairs[0]
    labelled = _LABELLED_TICKER.search(text)
    if labelled and labelled["ticker"].upper() not in _NOT_TICKERS:
        return labelled.start("ticker"), labelled.end("ticker"), labelled["ticker"].upper()
    # an upper-case word next to the direction: "THETA short", "LONG ATOM"
    window_start = max(0, direction_at - 16)
    window = text[window_start : direction_at + 24]
    for word in _CAPITALS_WORD.finditer(window):
        if word.group(0) not in _NOT_TICKERS:
            return window_start + word.start(), window_start + word.end(), word.group(0)
    for tagged in _TAGGED.finditer(text):
        if tagged["ticker"].upper() not in _NOT_TICKERS:
            return tagged.start("ticker"), tagged.end("ticker"), tagged["ticker"].upper()
    return None


def _parse_signal(text: str) -> TradeCall | None:
    direction = _DIRECTION.search(text)
    if direction is None:
        return None
    entry_match = _ENTRY.search(text) or _DIRECTION_NUMBER.search(text) or _AT_PRICE.search(text)
    if entry_match is None:
        return None
    targets_match = _TARGETS.search(text, entry_match.end())
    stop_match = _STOP.search(text)
    if targets_match is None and stop_match is None:
        return None
    ticker = _signal_ticker(text, direction.start())
    if ticker is None:
        return None
    start, end, symbol = ticker
    word = direction["dir"].lower()
    side = "short" if word in {"short", "sell"} else "long"
    entry_text = text[entry_match.start() : (targets_match.start() if targets_match else len(text))]
    entry_values = _numbers(entry_text.split("\n", 1)[0]) or _numbers(entry_match.group(0))
    targets: tuple[float, ...] = ()
    if targets_match is not None:  # "TP1 140 TP2 137": every targets group after the entry
        for match in _TARGETS.finditer(text, entry_match.end()):
            targets += _numbers(match["values"])
    stop = _number(stop_match.group(stop_match.lastindex or 0)) if stop_match else None
    leverage = _LEVERAGE.search(text)
    perp = _PERP_WORDS.search(text) is not None
    return TradeCall(
        ticker=base_symbol(symbol),
        action="OPEN",
        direction=side,
        instrument="perp" if perp else "spot",
        start=start,
        end=end,
        entry=entry_values[:4],
        targets=targets[:10],
        stop=stop,
        leverage=" ".join(leverage["lev"].split()) if leverage else None,
    )


def _parse_close(text: str) -> TradeCall | None:
    match = _CLOSE.search(text)
    if match is None or match["ticker"] in _NOT_TICKERS or match["ticker"].isdigit():
        return None
    return TradeCall(
        ticker=base_symbol(match["ticker"]),
        action="CLOSE",
        direction="exit",
        instrument="perp",
        start=match.start("ticker"),
        end=match.end("ticker"),
    )
