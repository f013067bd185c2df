"""Quality on the labelled dev split, through the evaluation script, so regressions fail CI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from detect.samples import REPO_ROOT


def test_eval_meets_precision_and_recall_targets(labelled_dir: Path):
    result = subprocess.run(
        [sys.executable, "benchmarks/eval_detection.py", "--corpus", str(labelled_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )

    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["precision"] >= 0.90, result.stdout
    assert figures["recall"] >= 0.85, result.stdout
    assert set(figures["per_event"]) == {
        "tge",
        "airdrop",
        "listing",
        "mainnet",
        "unlock",
        "trade_call",
    }
