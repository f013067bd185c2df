"""Detection quality on the labelled corpus: precision, recall and F1 per event and overall.

Runs the same path as ``sigwatch analyze`` (``analyze_stream``) over the labelled posts with the
corpus watchlist and compares (id, entity, event) triples with the labels. The corpus lives beside
the repository in ../shared/corpus/labeled (``dev.jsonl`` + ``watchlist.yaml``).

    .venv/bin/python benchmarks/eval_detection.py [--split dev.jsonl] [--min-confidence 0.5]

The last line printed is one JSON object: {"precision", "recall", "f1", "per_event": {...}}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from sigwatch.detect.analyze import analyze_stream, load_index
from sigwatch.detect.detector import DEFAULT_MIN_CONFIDENCE
from sigwatch.detect.events import EVENT_TYPES

CORPUS_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "labeled"


def scores(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    """Precision, recall and F1 of counts (1.0 where nothing was expected and nothing found)."""
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    parser.add_argument("--split", default="dev.jsonl")
    parser.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE)
    args = parser.parse_args()
    corpus = args.corpus.resolve()
    posts_path = corpus / args.split
    watchlist_path = corpus / "watchlist.yaml"
    if not posts_path.is_file() or not watchlist_path.is_file():
        sys.exit(
            f"labelled corpus not found: expected {posts_path} and {watchlist_path} "
            "(check out the shared corpus beside the repository, or pass --corpus DIR)"
        )

    lines = posts_path.read_text(encoding="utf-8").splitlines()
    expected: set[tuple[str, str, str]] = set()
    for line in lines:
        record = json.loads(line)
        for label in record.get("labels", []):
            expected.add((str(record["id"]), label["entity"], label["event"]))

    index = load_index(watchlist_path)
    started = time.perf_counter()
    found = {
        (d["id"], d["entity"], d["event"])
        for d in analyze_stream(lines, index, min_confidence=args.min_confidence)
    }
    elapsed = time.perf_counter() - started

    tp_by = Counter(e for _, _, e in found & expected)
    fp_by = Counter(e for _, _, e in found - expected)
    fn_by = Counter(e for _, _, e in expected - found)
    per_event = {event: scores(tp_by[event], fp_by[event], fn_by[event]) for event in EVENT_TYPES}
    overall = scores(len(found & expected), len(found - expected), len(expected - found))

    print(
        f"{posts_path.name}: {len(lines)} posts, {len(expected)} labelled (id, entity, event), "
        f"{len(found)} detected at min confidence {args.min_confidence} in {elapsed:.2f} s"
    )
    print(f"{'event':<12}{'precision':>10}{'recall':>10}{'f1':>8}{'tp':>6}{'fp':>6}{'fn':>6}")
    for event, row in [*per_event.items(), ("overall", overall)]:
        print(
            f"{event:<12}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>8.3f}"
            f"{row['tp']:>6}{row['fp']:>6}{row['fn']:>6}"
        )
    print(
        json.dumps(
            {
                "precision": overall["precision"],
                "recall": overall["recall"],
                "f1": overall["f1"],
                "per_event": per_event,
            }
        )
    )


if __name__ == "__main__":
    main()
