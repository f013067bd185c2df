"""``sigwatch source import`` and ``source export``: feed lists as OPML, as feed readers use."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from sigwatch.cli.common import (
    cli_settings,
    console,
    errors,
    fail,
    friendly_errors,
    open_database,
    run,
)
from sigwatch.cli.sources import Interval
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db.models import Source


def register(source_app: typer.Typer) -> None:
    """Add ``import`` and ``export`` to the ``source`` group."""
    source_app.command("import")(source_import)
    source_app.command("export")(source_export)


@friendly_errors
def source_import(
    file: Annotated[Path, typer.Argument(help="OPML file exported by a feed reader.")],
    interval: Interval = None,
) -> None:
    """Import RSS/Atom feeds from an OPML file; feeds already present are skipped."""
    from sigwatch.sources.opml import parse_opml

    if not file.exists():
        raise fail(f"{file} does not exist")
    feeds = parse_opml(file.read_bytes())
    settings = cli_settings()
    added, skipped = run(_source_import(settings, feeds, interval))
    console.print(f"imported {added} feeds, skipped {skipped} already present")


async def _source_import(
    settings: Settings, feeds: list[Any], interval: int | None
) -> tuple[int, int]:
    from sigwatch.manage.opml import import_feeds

    secret_key = ensure_secret_key(settings)
    async with open_database(settings) as sessions, sessions.begin() as session:
        result = await import_feeds(
            session,
            feeds,
            poll_interval_s=interval,
            secret_key=secret_key,
            actor="cli",
            settings=settings,
        )
    return result.added, result.skipped


@friendly_errors
def source_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default stdout.")
    ] = None,
) -> None:
    """Export the RSS/Atom sources as OPML."""
    from sigwatch.sources.opml import OpmlFeed, write_opml

    settings = cli_settings()
    sources = run(_source_list_rss(settings))
    data = write_opml(
        [OpmlFeed(title=s.name, url=s.config["url"], category=None) for s in sources],
        title="sigwatch sources",
    )
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        errors.print(f"wrote {len(sources)} feeds to {output}")


async def _source_list_rss(settings: Settings) -> list[Source]:
    from sigwatch.db.sources import list_all_sources

    async with open_database(settings) as sessions, sessions() as session:
        return await list_all_sources(session, kind="rss")
