"""Quality on held-out posts written for this test, so the rules are checked beyond the dev split.

``testdata/heldout.jsonl`` holds posts in the styles of the labelled corpus's sources (exchange
announcement titles, founder tweets, news headlines, event-calendar entries, Discord option alerts,
Telegram futures signals), announcements and hard negatives alike, labelled with the corpus's
guideline (../shared/corpus/labeled/README.md); ``testdata/watchlist.yaml`` is their watchlist.
They were written without looking at the rules' phrases and are never used to tune them: a miss
here is fixed by a general rule, or left as a known gap, but never by copying the post's words.
``heldout-2.jsonl`` was written later, after the misses of the first set had been fixed, and
nothing has been changed after reading its results.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from detect.samples import REPO_ROOT

TESTDATA = Path(__file__).resolve().parent / "testdata"


@pytest.mark.parametrize("split", ["heldout.jsonl", "heldout-2.jsonl"])
def test_held_out_posts_meet_precision_and_recall_targets(split):
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/eval_detection.py",
            "--corpus",
            str(TESTDATA),
            "--split",
            split,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )

    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["precision"] >= 0.90, result.stdout
    assert figures["recall"] >= 0.85, result.stdout


@pytest.mark.parametrize(("split", "size"), [("heldout.jsonl", 40), ("heldout-2.jsonl", 30)])
def test_held_out_posts_cover_every_event_and_their_negatives(split, size):
    lines = (TESTDATA / split).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]

    events = {label["event"] for record in records for label in record["labels"]}
    negatives = [record for record in records if not record["labels"]]
    assert events == {"tge", "airdrop", "listing", "mainnet", "unlock", "trade_call"}
    assert len(records) >= size and len(negatives) >= len(records) / 3
