"""Offline analysis: JSONL in, JSONL out; bad lines reported and skipped."""

from __future__ import annotations

import io
import json

from detect.samples import WATCHLIST_YAML
from sigwatch.detect import analyze_stream, run_analyze

GOOD = {
    "id": "1",
    "text": "Kraken will list Arbitrum (ARB) on Dec 3",
    "published": "2025-11-25T10:00:00Z",
}


def test_output_has_exactly_the_documented_fields(index):
    (record,) = analyze_stream([json.dumps(GOOD)], index, min_confidence=0.5)

    assert list(record) == [
        "id", "entity", "event", "confidence", "urgency", "event_time", "spans", "features"
    ]  # fmt: skip
    assert (record["id"], record["entity"], record["event"]) == ("1", "Arbitrum", "listing")
    assert record["event_time"] == "2025-12-03T00:00:00+00:00"
    assert all(set(span) == {"start", "end", "text", "kind", "label"} for span in record["spans"])


def test_bad_lines_are_reported_with_their_number_and_skipped(index):
    lines = [
        "not json",
        json.dumps({"text": "no id"}),
        json.dumps({"id": "2"}),
        "[1, 2]",
        "",
        json.dumps(GOOD),
        json.dumps({**GOOD, "id": "3", "published": "yesterday"}),
    ]
    reported: list[tuple[int, str]] = []

    records = list(
        analyze_stream(
            lines, index, min_confidence=0.5, report=lambda n, r: reported.append((n, r))
        )
    )

    assert [r["id"] for r in records] == ["1", "3"]
    assert [number for number, _ in reported] == [1, 2, 3, 4, 7]
    assert "not JSON" in reported[0][1] and "'id'" in reported[1][1] and "'text'" in reported[2][1]


def test_threshold_filters_output(index):
    assert list(analyze_stream([json.dumps(GOOD)], index, min_confidence=1.01)) == []


def test_run_analyze_reads_the_watchlist_file_and_counts(tmp_path, capsys):
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(WATCHLIST_YAML, encoding="utf-8")
    source = io.StringIO(json.dumps(GOOD) + "\n{broken\n")
    sink = io.StringIO()

    count = run_analyze(watchlist, source, sink, 0.5)

    assert count == 1
    assert json.loads(sink.getvalue())["entity"] == "Arbitrum"
    assert "line 2: skipped" in capsys.readouterr().err
