"""Detection: from a post and a watchlist, the events it announces, with evidence.

Pure: no database, no network, no clock. Build an index once per watchlist with ``build_index``,
then call ``detect`` per post; ``analyze_stream``/``run_analyze`` do the same over JSONL.
"""

from __future__ import annotations

from sigwatch.detect.analyze import analyze_stream, run_analyze
from sigwatch.detect.detector import (
    DEFAULT_MIN_CONFIDENCE,
    Detection,
    DetectionIndex,
    PostInput,
    Span,
    analysed_text,
    build_index,
    detect,
)
from sigwatch.detect.events import EVENT_TYPES
from sigwatch.detect.tradecall import TradeCall
from sigwatch.detect.watchlist import (
    Entity,
    RuleOverride,
    Watchlist,
    WatchlistError,
    dump_watchlist_yaml,
    load_watchlist_yaml,
)

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "EVENT_TYPES",
    "Detection",
    "DetectionIndex",
    "Entity",
    "PostInput",
    "RuleOverride",
    "Span",
    "TradeCall",
    "Watchlist",
    "WatchlistError",
    "analysed_text",
    "analyze_stream",
    "build_index",
    "detect",
    "dump_watchlist_yaml",
    "load_watchlist_yaml",
    "run_analyze",
]
