"""Offline analysis: JSONL posts in, JSONL detections out, as a stream (``sigwatch analyze``).

Each input line is a JSON object with ``id`` and ``text`` and optionally ``author``, ``source``,
``published`` (ISO-8601), ``title`` and ``url``; other fields are ignored. Each output line is one
detection at or above the threshold: ``id``, ``entity``, ``event``, ``confidence``, ``urgency``,
``event_time``, ``spans``, ``features``. A line that is not a JSON object, or lacks a text ``id`` or
``text``, is reported with its line number and skipped; the run goes on. An unreadable
``published`` is reported and the post analysed without it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sigwatch.detect.detector import (
    DEFAULT_MIN_CONFIDENCE,
    Detection,
    DetectionIndex,
    PostInput,
    build_index,
    detect,
)
from sigwatch.detect.watchlist import WatchlistError, load_watchlist_yaml

#: Receives (line number, reason) for each input line that was skipped.
BadLineReporter = Callable[[int, str], None]


def report_to_stderr(line_number: int, reason: str) -> None:
    """The default bad-line reporter: one line on standard error."""
    sys.stderr.write(f"line {line_number}: skipped: {reason}\n")


def post_from_record(record: Mapping[str, Any]) -> PostInput:
    """A PostInput from a decoded JSONL record; ValueError names what is wrong."""
    post_id = record.get("id")
    text = record.get("text")
    if isinstance(post_id, int) and not isinstance(post_id, bool):
        post_id = str(post_id)
    if not isinstance(post_id, str) or not post_id:
        raise ValueError("missing 'id' (a non-empty string)")
    if not isinstance(text, str):
        raise ValueError("missing 'text' (a string)")
    return PostInput(
        id=post_id,
        text=text,
        author=_optional_text(record, "author"),
        source=_optional_text(record, "source"),
        published=parse_published(record.get("published")),
        title=_optional_text(record, "title"),
        url=_optional_text(record, "url"),
    )


def parse_published(value: Any) -> datetime | None:
    """An ISO-8601 publication time, or None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def detection_record(detection: Detection) -> dict[str, Any]:
    """A detection as its JSONL output object."""
    return {
        "id": detection.post_id,
        "entity": detection.entity,
        "event": detection.event,
        "confidence": detection.confidence,
        "urgency": detection.urgency,
        "event_time": detection.event_time.isoformat() if detection.event_time else None,
        "spans": [
            {"start": s.start, "end": s.end, "text": s.text, "kind": s.kind, "label": s.label}
            for s in detection.spans
        ],
        "features": detection.features,
    }


def analyze_stream(
    lines: Iterable[str],
    index: DetectionIndex,
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    report: BadLineReporter = report_to_stderr,
) -> Iterator[dict[str, Any]]:
    """Detections of each post line at or above the threshold (an event's own rule wins)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            report(number, f"not JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            report(number, "not a JSON object")
            continue
        try:
            post = post_from_record(record)
        except ValueError as exc:
            report(number, str(exc))
            continue
        if record.get("published") and post.published is None:
            report(number, "'published' is not an ISO-8601 time; analysed without it")
        for detection in detect(post, index):
            if detection.confidence >= index.threshold(detection.event, min_confidence):
                yield detection_record(detection)


def load_index(watchlist_path: str | Path) -> DetectionIndex:
    """Read a watchlist YAML file and compile it; WatchlistError says what is wrong."""
    path = Path(watchlist_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WatchlistError(None, f"cannot read {path}: {exc}") from None
    return build_index(load_watchlist_yaml(text))


def run_analyze(
    watchlist_path: str | Path,
    input_stream: IO[str],
    output_stream: IO[str],
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    report: BadLineReporter = report_to_stderr,
) -> int:
    """Analyse a JSONL stream against a watchlist file, write JSONL; return the count written."""
    index = load_index(watchlist_path)
    count = 0
    for record in analyze_stream(input_stream, index, min_confidence=min_confidence, report=report):
        output_stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def _optional_text(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    return value if isinstance(value, str) and value else None
