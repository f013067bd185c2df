"""Detection without the pipeline: ``analyze`` JSONL offline, ``backtest`` over the archive."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.progress import Progress, TextColumn
from rich.table import Table

from sigwatch.cli.common import (
    cli_settings,
    console,
    errors,
    fail,
    friendly_errors,
    open_database,
    run,
    when,
)
from sigwatch.config import Settings


def register(app: typer.Typer) -> None:
    """Add ``analyze`` and ``backtest`` to ``app``."""
    app.command()(analyze)
    app.command()(backtest)


@friendly_errors
def analyze(
    watchlist: Annotated[Path, typer.Option("--watchlist", help="Watchlist YAML to detect with.")],
    input_file: Annotated[
        Path | None, typer.Option("--input", help="JSONL posts; default standard input.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="JSONL detections; default standard output.")
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option("--min-confidence", min=0, max=1, help="Threshold; default the product's."),
    ] = None,
) -> None:
    """Detect events in JSONL posts offline: no database, no network, streamed."""
    from sigwatch.detect import DEFAULT_MIN_CONFIDENCE, run_analyze

    if not watchlist.exists():
        raise fail(f"{watchlist} does not exist: give a watchlist YAML with --watchlist")
    if input_file is not None and not input_file.exists():
        raise fail(f"{input_file} does not exist")
    threshold = DEFAULT_MIN_CONFIDENCE if min_confidence is None else min_confidence
    with (
        input_file.open(encoding="utf-8") if input_file else _stdin() as source,
        output.open("w", encoding="utf-8") if output else _stdout() as sink,
    ):
        count = run_analyze(watchlist, source, sink, threshold)
    errors.print(f"{count} detections")


@contextmanager
def _stdin() -> Iterator[TextIO]:
    yield sys.stdin


@contextmanager
def _stdout() -> Iterator[TextIO]:
    yield sys.stdout
    sys.stdout.flush()


@friendly_errors
def backtest(
    since: Annotated[
        datetime | None, typer.Option(help="Replay posts published from (UTC).")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(help="Replay posts published before (UTC).")
    ] = None,
    watchlist: Annotated[
        Path | None, typer.Option("--watchlist", help="Watchlist YAML; default the stored one.")
    ] = None,
    min_confidence: Annotated[
        float | None, typer.Option("--min-confidence", min=0, max=1, help="Alert threshold.")
    ] = None,
) -> None:
    """Replay archived posts through the rules; report what would have alerted (sends nothing)."""
    from sigwatch.detect import load_watchlist_yaml

    parsed = None
    if watchlist is not None:
        if not watchlist.exists():
            raise fail(f"{watchlist} does not exist")
        parsed = load_watchlist_yaml(watchlist.read_text(encoding="utf-8"))
    settings = cli_settings()
    report = run(_backtest(settings, parsed, _utc(since), _utc(until), min_confidence))
    table = Table("first evidence", "entity", "event", "confidence", "evidence", "title")
    for alert in report.alerts:
        table.add_row(
            when(alert.first_evidence_at),
            alert.entity,
            alert.event,
            f"{alert.confidence:.2f}",
            str(alert.evidence),
            alert.title[:60],
        )
    console.print(table)
    console.print(f"{report.posts} posts replayed, {len(report.alerts)} alerts would have fired")
    for title, counts in (("per event", report.per_event), ("per entity", report.per_entity)):
        console.print(f"{title}: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


async def _backtest(
    settings: Settings,
    parsed: Any,
    since: datetime | None,
    until: datetime | None,
    min_confidence: float | None,
) -> Any:
    from sigwatch.worker.backtest import backtest_archive

    async with open_database(settings) as sessions:
        with Progress(
            TextColumn("replaying"), TextColumn("{task.completed} posts"), console=errors
        ) as progress:
            task = progress.add_task("replay", total=None)
            return await backtest_archive(
                settings,
                sessions,
                watchlist=parsed,
                since=since,
                until=until,
                min_confidence=min_confidence,
                on_progress=lambda n: progress.update(task, completed=n),
            )
