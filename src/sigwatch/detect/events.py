"""The event types sigwatch detects and the keyword tiers their rules are written in."""

from __future__ import annotations

from typing import Final

#: Every event type, in the order results are reported.
EVENT_TYPES: Final = ("tge", "airdrop", "listing", "mainnet", "unlock", "trade_call")

#: A keyword's tier and what it adds to a detection's confidence.
TIER_WEIGHTS: Final = {"strong": 0.45, "medium": 0.3, "weak": 0.05}

#: Urgency levels, most pressing first.
URGENCIES: Final = ("critical", "high", "medium", "low")
