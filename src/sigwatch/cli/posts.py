"""The archive: ``collect`` posts now, ``search`` them, ``export posts``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sigwatch.cli.common import (
    USAGE_ERROR,
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

if TYPE_CHECKING:
    from sigwatch.export import ExportFormat

#: The export formats (sigwatch.export is imported only by the export itself: pyarrow is big).
EXPORT_FORMATS = ("csv", "jsonl", "parquet")
#: Accepted by --since and --until: a date, a time (UTC), or a time with its zone (+02:00, Z).
TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]

export_app = typer.Typer(help="Export the archive.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``collect``, ``search`` and ``export`` to ``app``."""
    app.command()(collect)
    app.command()(search)
    app.add_typer(export_app, name="export")


@friendly_errors
def collect(
    source: Annotated[
        list[int] | None, typer.Option("--source", help="Source id; repeat for several.")
    ] = None,
    all_sources: Annotated[bool, typer.Option("--all", help="Every enabled source.")] = False,
    backfill: Annotated[
        int | None,
        typer.Option(
            "--backfill",
            min=1,
            metavar="N",
            help="Archive up to N past posts of the one --source instead of polling it; "
            "goes on from where an interrupted backfill stopped.",
        ),
    ] = None,
    restart: Annotated[
        bool,
        typer.Option("--restart", help="With --backfill: start over from the newest post."),
    ] = False,
) -> None:
    """Poll sources once now, with a progress bar; an unknown source id is an error.

    With --backfill N, page back through one source's older posts instead (an account's
    timeline, as far as its platform allows). Backfilled posts are archived without detection
    or alerts. An interrupted backfill (Ctrl-C, a failed page, a killed process) keeps its
    place: the same command goes on from there.
    """
    if backfill is not None:
        if all_sources or not source or len(source) != 1:
            raise fail("--backfill takes exactly one --source ID", code=USAGE_ERROR)
        _backfill(source[0], backfill, restart)
        return
    if restart:
        raise fail("--restart goes with --backfill N", code=USAGE_ERROR)
    if not source and not all_sources:
        raise fail("say which sources: --source ID (repeatable) or --all", code=USAGE_ERROR)
    settings = cli_settings()
    outcomes = run(_collect(settings, None if all_sources else source))
    failed = [o for o in outcomes if not o.ok]
    new = sum(o.new for o in outcomes)
    console.print(
        f"polled {len(outcomes)} sources: {new} new posts, "
        f"{sum(o.updated for o in outcomes)} updated, {len(failed)} failed"
    )
    for outcome in failed:
        errors.print(f"  source {outcome.source_id}: {outcome.error}", highlight=False)
    if failed:
        raise typer.Exit(1)


def _backfill(source_id: int, limit: int, restart: bool) -> None:
    settings = cli_settings()
    outcome = run(_run_backfill(settings, source_id, limit, restart))
    done = outcome.progress
    summary = (
        f"backfill of source {source_id} (job {done.job_id}): {done.fetched} past posts in "
        f"{done.pages} pages, {done.new} new, {done.updated} updated"
    )
    if done.left_to_poll:
        summary += f", {done.left_to_poll} newer than the last poll left for the polls"
    console.print(summary, highlight=False)
    if not outcome.ok:
        raise fail(outcome.error or f"the backfill ended {outcome.status}")


async def _run_backfill(settings: Settings, source_id: int, limit: int, restart: bool) -> Any:
    from sigwatch.worker.backfill import BackfillProgress, backfill_now, take_backfill
    from sigwatch.worker.runner import new_worker_id

    worker_id = f"collect:{new_worker_id()}"
    async with open_database(settings) as sessions:
        # Claimed first, so a source that cannot be backfilled is an error before any bar.
        job = await take_backfill(
            settings, sessions, source_id, limit=limit, worker_id=worker_id, restart=restart
        )
        start = BackfillProgress.of_job(job)
        if start.pages:
            errors.print(
                f"going on with job {job.id} after {start.pages} pages ({start.fetched} posts)",
                highlight=False,
            )
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("posts"),
            TimeElapsedColumn(),
            console=errors,
        ) as progress:
            task = progress.add_task(
                f"backfilling source {source_id}", total=limit, completed=start.fetched
            )

            def paged(at: BackfillProgress) -> None:
                progress.update(task, total=at.limit, completed=at.fetched)

            return await backfill_now(settings, sessions, job, worker_id=worker_id, on_page=paged)


async def _collect(settings: Settings, source_ids: list[int] | None) -> list[Any]:
    from sigwatch.db.sources import get_source
    from sigwatch.errors import Conflict, NotFound

    async with open_database(settings) as sessions:
        if source_ids is not None:
            # Checked first, so an unknown id is an error rather than "polled 0 sources".
            async with sessions() as session:
                for source_id in source_ids:
                    try:
                        found = await get_source(session, source_id, owner_id=None)
                    except NotFound:
                        raise NotFound(
                            f"no source with id {source_id}: `sigwatch source list` shows the "
                            "sources there are"
                        ) from None
                    if not found.enabled:
                        raise Conflict(
                            f"source {source_id} is paused: resume it with `sigwatch source "
                            f"resume {source_id}`, then collect it"
                        )
        from sigwatch.worker.runner import collect_once

        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=errors,
        ) as progress:
            task = progress.add_task("collecting", total=None)
            return await collect_once(
                settings,
                sessions,
                source_ids,
                on_claimed=lambda claimed: progress.update(task, total=len(claimed)),
                on_done=lambda _outcome: progress.advance(task),
            )


@friendly_errors
def search(
    query: Annotated[str, typer.Argument(help="Words to find (all must match).")],
    limit: Annotated[int, typer.Option(help="Most results to show.", min=1, max=1000)] = 20,
) -> None:
    """Full-text search over the archive."""
    settings = cli_settings()
    posts = run(_search(settings, query, limit))
    for post in posts:
        headline = (post.title or post.text).replace("\n", " ")[:160]
        console.print(
            f"[dim]{when(post.published_at)}  source {post.source_id}[/]  {headline}",
            soft_wrap=True,
            highlight=False,
            markup=True,
        )
        if post.url:
            console.print(f"    {post.url}", soft_wrap=True, highlight=False, style="cyan")
    console.print(f"{len(posts)} posts")


async def _search(settings: Settings, query: str, limit: int) -> list[Any]:
    from sigwatch.db.posts import list_posts

    async with open_database(settings) as sessions, sessions() as session:
        page = await list_posts(session, owner_id=None, q=query, limit=limit)
        return page.items


@export_app.command("posts")
@friendly_errors
def export_posts(
    fmt: Annotated[str, typer.Option("--format", help="csv, jsonl or parquet.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default stdout.")
    ] = None,
    source: Annotated[int | None, typer.Option("--source", help="Only this source.")] = None,
    since: Annotated[
        datetime | None,
        typer.Option(formats=TIME_FORMATS, help="Only posts published from (UTC unless a zone)."),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(formats=TIME_FORMATS, help="Only posts published before (UTC unless a zone)."),
    ] = None,
    query: Annotated[str | None, typer.Option("--query", "-q", help="Full-text filter.")] = None,
) -> None:
    """Export posts, newest first, as CSV, JSONL or Parquet (columns: see docs/cli.md)."""
    if fmt not in EXPORT_FORMATS:
        raise fail(
            f"unknown format {fmt!r}: use --format csv, --format jsonl or --format parquet",
            USAGE_ERROR,
        )
    if fmt == "parquet" and output is None and sys.stdout.isatty():
        raise fail(
            "Parquet is binary: give --output FILE, or redirect standard output to a file",
            USAGE_ERROR,
        )
    settings = cli_settings()
    chosen: ExportFormat = fmt  # type: ignore[assignment]  # checked above
    count = run(_export_posts(settings, chosen, output, source, _utc(since), _utc(until), query))
    errors.print(f"exported {count} posts" + (f" to {output}" if output else ""))


def _utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo is not None else value.replace(tzinfo=UTC)


async def _export_posts(
    settings: Settings,
    fmt: ExportFormat,
    output: Path | None,
    source_id: int | None,
    since: datetime | None,
    until: datetime | None,
    q: str | None,
) -> int:
    from sigwatch.db.sources import get_source
    from sigwatch.errors import NotFound
    from sigwatch.export import iter_posts, write_parquet, write_posts

    async with open_database(settings) as sessions:
        if source_id is not None:
            async with sessions() as session:
                try:
                    await get_source(session, source_id, owner_id=None, include_removed=True)
                except NotFound:
                    raise NotFound(
                        f"no source with id {source_id}: `sigwatch source list` shows the "
                        "sources there are"
                    ) from None
        posts = iter_posts(sessions, source_id=source_id, since=since, until=until, q=q)
        if output is None:
            if fmt == "parquet":
                return await write_parquet(posts, sys.stdout.buffer)
            return await write_posts(posts, sys.stdout, fmt)
        with (
            _open_output(output, fmt) as out,
            Progress(
                TextColumn("exporting"), TextColumn("{task.completed} posts"), console=errors
            ) as progress,
        ):
            task = progress.add_task("export", total=None)

            def shown(count: int) -> None:
                progress.update(task, completed=count)

            if fmt == "parquet":
                return await write_parquet(posts, out, on_progress=shown)
            return await write_posts(posts, out, fmt, on_progress=shown)


def _open_output(output: Path, fmt: ExportFormat) -> IO[Any]:
    """The output file, binary for Parquet, UTF-8 text (newlines as written) otherwise."""
    if fmt == "parquet":
        return output.open("wb")
    return output.open("w", encoding="utf-8", newline="")
