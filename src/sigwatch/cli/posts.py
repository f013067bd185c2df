"""The archive: ``collect`` posts now, ``search`` them, ``export posts``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

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
) -> None:
    """Poll sources once now, with a progress bar; an unknown source id is an error."""
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
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default stdout.")
    ] = None,
    source: Annotated[int | None, typer.Option("--source", help="Only this source.")] = None,
    query: Annotated[str | None, typer.Option("--query", "-q", help="Full-text filter.")] = None,
) -> None:
    """Export posts, newest first, as CSV or JSONL."""
    if fmt not in ("csv", "jsonl"):
        raise fail(f"unknown format {fmt!r}: use --format csv or --format jsonl", USAGE_ERROR)
    settings = cli_settings()
    count = run(_export_posts(settings, fmt, output, source, query))
    errors.print(f"exported {count} posts" + (f" to {output}" if output else ""))


async def _export_posts(
    settings: Settings, fmt: str, output: Path | None, source_id: int | None, q: str | None
) -> int:
    from sigwatch.export import iter_posts, write_posts

    async with open_database(settings) as sessions:
        posts = iter_posts(sessions, source_id=source_id, q=q)
        if output is None:
            return await write_posts(posts, sys.stdout, fmt)  # type: ignore[arg-type]
        with (
            output.open("w", encoding="utf-8", newline="") as out,
            Progress(
                TextColumn("exporting"), TextColumn("{task.completed} posts"), console=errors
            ) as progress,
        ):
            task = progress.add_task("export", total=None)
            return await write_posts(
                posts,
                out,
                fmt,  # type: ignore[arg-type]
                on_progress=lambda n: progress.update(task, completed=n),
            )
