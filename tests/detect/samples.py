"""Inputs shared by the detection tests: a small watchlist written for them, paths, a time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LABELLED_DIR = (REPO_ROOT / ".." / "shared" / "corpus" / "labeled").resolve()
PUBLISHED = datetime(2025, 11, 25, 10, 0, tzinfo=UTC)

WATCHLIST_YAML = """\
entities:
  - name: Arbitrum
    aliases: [Arbitrum One]
    symbols: [ARB]
    handles: [arbitrum]
    domains: [arbitrum.io]
    tags: [l2]
  - name: Optimism
    symbols: [OP]
    handles: [Optimism]
  - name: Safe
    symbols: [SAFE]
  - name: Harmony
    symbols: [ONE]
  - name: Celestia
    symbols: [TIA]
  - name: Aptos
    symbols: [APT]
  - name: Fartcoin
    symbols: [FARTCOIN]
  - name: Bitcoin
    symbols: [BTC]
  - name: Ethereum
    symbols: [ETH]
  - name: SPY
  - name: Binance
    aliases: [Binance Futures]
    handles: [binance]
  - name: Kraken
  - name: Coinbase
"""
