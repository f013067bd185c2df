"""``sigwatch source``: what is polled — add any kind, list with health, change, pause, remove.

Sources added here are shared (every user's alerts may draw on them) unless ``--user`` makes
one a user's own, as the CLI has always added them; ids are checked, so an unknown id stops the
command with exit status 1 before anything runs.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from sigwatch.cli.common import (
    USAGE_ERROR,
    cli_settings,
    console,
    fail,
    friendly_errors,
    open_database,
    run,
    when,
)
from sigwatch.cli.options import check_options, describe_kinds, parse_settings, secret_names
from sigwatch.cli.owners import owner_for
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db.audit import record_audit, snapshot
from sigwatch.db.models import Source
from sigwatch.db.types import utcnow
from sigwatch.errors import InvalidInput
from sigwatch.manage.opml import name_from_url
from sigwatch.sources.presets import presets_help, split_preset_assignments
from sigwatch.sources.registry import SOURCE_KINDS

source_app = typer.Typer(help="Sources to collect posts from.", no_args_is_help=True)

#: Columns left out of audit rows: fetch state and leases change on every poll, not by a user.
_NOT_AUDITED = ("state", "lease_owner", "lease_expires_at")

SourceId = Annotated[int, typer.Argument(help="Source id, as `sigwatch source list` shows it.")]
Interval = Annotated[
    int | None,
    typer.Option(
        "--interval",
        help="Longest wait between polls, in seconds (adaptive polling may poll sooner, never "
        "below the kind's minimum).",
        min=1,
    ),
]
Assignments = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE", help="An option of the kind; repeat for several."),
]


def _options_model(kind: str) -> Any:
    factory = SOURCE_KINDS.get(kind)
    if factory is None:
        raise fail(
            f"unknown source kind {kind!r}: use one of {', '.join(sorted(SOURCE_KINDS))}",
            USAGE_ERROR,
        )
    return factory.Options


def _audited(source: Source, secret_key: str) -> dict[str, Any]:
    from sigwatch.manage.sources import shown_source_config

    return {
        **snapshot(source, exclude=_NOT_AUDITED),
        "config": shown_source_config(source, secret_key),
    }


_ADD_HELP = (
    "Add a source of any kind, its options given as --set KEY=VALUE.\n\n"
    "`source add rss URL` is a shortcut: URL may be the feed or a site's home page, which is "
    "searched for its feed. Secret options are never read from the command line: give "
    "--set KEY=- to read one line of standard input, or leave them out to be asked.\n\n"
    + describe_kinds({k: v.Options for k, v in SOURCE_KINDS.items()})
)


@source_app.command("add", help=_ADD_HELP)
@friendly_errors
def source_add(
    kind: Annotated[
        str, typer.Argument(metavar="KIND", help=f"One of: {', '.join(sorted(SOURCE_KINDS))}.")
    ],
    url: Annotated[
        str | None,
        typer.Argument(
            metavar="URL", help="rss only: the feed URL, or a site's home page to find it on."
        ),
    ] = None,
    assignments: Assignments = None,
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    interval: Interval = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Make it this user's own; default shared.")
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="json only: start from a preset, its parameters given as --set KEY=VALUE "
            f"like the options. Presets: {presets_help()}",
        ),
    ] = None,
) -> None:
    model = _options_model(kind)
    if url is not None and kind != "rss":
        raise fail(
            f"only rss takes a URL argument; give the options of {kind} with --set KEY=VALUE",
            USAGE_ERROR,
        )
    fixed = None if url is None else {"url": url}
    if preset is not None:
        if kind != "json":
            raise fail(f"only json takes --preset; give {kind}'s options with --set", USAGE_ERROR)
        try:
            params, assignments = split_preset_assignments(preset, assignments or [])
        except InvalidInput as exc:
            raise fail(f"--preset {preset}: {exc.message}", USAGE_ERROR) from None
        fixed = {"preset": preset, **params}
    config = parse_settings(
        kind,
        model,
        assignments or [],
        prompt_missing_secrets=True,
        fixed=fixed,
    )
    if url is None and name is None and "url" not in config:
        raise fail(f"give the {kind} source a name with --name", USAGE_ERROR)
    settings = cli_settings()
    source_id, shown_url = run(_source_add(settings, kind, url, config, name, interval, user))
    console.print(f"source {source_id} added: {shown_url or name}", highlight=False)


async def _source_add(
    settings: Settings,
    kind: str,
    url: str | None,
    config: dict[str, Any],
    name: str | None,
    interval: int | None,
    username: str | None,
) -> tuple[int, str | None]:
    from sigwatch.manage.sources import create_source

    if url is not None:
        config["url"] = await _discover(settings, url)
    address = config.get("url")
    secret_key = ensure_secret_key(settings)
    async with open_database(settings) as sessions, sessions.begin() as session:
        owner = None if username is None else await owner_for(session, username)
        source = await create_source(
            session,
            kind=kind,
            name=name or name_from_url(str(address)),
            config=config,
            secret_key=secret_key,
            poll_interval_s=interval,
            settings=settings,
            owner_id=None if owner is None else owner.id,
        )
        after = _audited(source, secret_key)
        await record_audit(session, "cli", "create", "source", source.id, None, after)
        return source.id, None if address is None else str(address)


async def _discover(settings: Settings, url: str) -> str:
    from sigwatch.net.client import OutboundClient
    from sigwatch.sources.discover import discover_feed

    async with OutboundClient.from_settings(settings) as client:
        return await discover_feed(client, url)


@source_app.command("list")
@friendly_errors
def source_list() -> None:
    """List sources with their health: last poll, failures, host breaker, error, next poll."""
    settings = cli_settings()
    sources, owners, breakers = run(_source_list(settings))
    table = Table(
        "id",
        "kind",
        "name",
        "owner",
        "interval",
        "health",
        "breaker",
        "last success",
        "next poll",
        "error",
    )
    now = utcnow()
    for source in sources:
        table.add_row(
            str(source.id),
            source.kind,
            source.name,
            owners.get(source.owner_id, "shared"),
            f"{source.poll_interval_s}s",
            health(source),
            breakers.get(source.id, "unknown"),
            when(source.last_success_at),
            next_poll(source, now),
            (source.last_error or "")[:80],
        )
    console.print(table)
    console.print(f"{len(sources)} sources")


def health(source: Source) -> str:
    """One word on how the source is doing: paused, new, ok, or failing with the count."""
    if not source.enabled:
        return "paused"
    if source.consecutive_failures:
        return f"failing ({source.consecutive_failures}x)"
    return "ok" if source.last_success_at else "not polled yet"


def next_poll(source: Source, now: datetime) -> str:
    """When the source is polled next: "paused", "now" when due, else the time."""
    if not source.enabled:
        return "paused"
    due = source.next_poll_at
    if due.tzinfo is None:
        due = due.replace(tzinfo=now.tzinfo)
    return "now" if due <= now else when(due)


async def _source_list(
    settings: Settings,
) -> tuple[list[Source], dict[int | None, str], dict[int, str]]:
    from sigwatch.cli.owners import all_usernames
    from sigwatch.db.sources import list_all_sources

    async with open_database(settings) as sessions, sessions() as session:
        sources = await list_all_sources(session)
        return sources, await all_usernames(session), await _breakers(settings, sources)


async def _breakers(settings: Settings, sources: list[Source]) -> dict[int, str]:
    """Each source's host breaker in words: read from Redis when configured, else unknown
    (this command is not the worker, whose memory holds the breakers without Redis)."""
    from sigwatch.manage.sources import source_breakers
    from sigwatch.net.hosts import describe_breaker

    found = await source_breakers(settings, sources, ensure_secret_key(settings), None)
    return {
        source_id: f"{describe_breaker(health)} ({host})" if host else describe_breaker(health)
        for source_id, (host, health) in found.items()
    }


@source_app.command("show")
@friendly_errors
def source_show(source_id: SourceId) -> None:
    """Show one source: its options (secrets masked), health and number of posts."""
    settings = cli_settings()
    source, config, posts, breaker = run(_source_show(settings, source_id))
    table = Table("field", "value", show_header=False)
    rows: list[tuple[str, str]] = [
        ("id", str(source.id)),
        ("kind", source.kind),
        ("name", source.name),
        ("owner", "shared" if source.owner_id is None else f"user {source.owner_id}"),
        *((f"option {k}", str(v)) for k, v in config.items()),
        (
            "interval",
            f"{source.poll_interval_s}s at most, {settings.min_poll_interval_of(source.kind)}s "
            f"at least (the {source.kind} minimum)",
        ),
        ("polling", source.interval_reason or "chosen at the first successful poll"),
        ("posts every", _usual_gap(source)),
        ("last new post", when(source.last_new_post_at) if source.last_new_post_at else ""),
        ("freshness", _freshness_shown(source)),
        ("health", health(source)),
        ("last poll", when(source.last_polled_at)),
        ("last success", when(source.last_success_at)),
        ("failures in a row", str(source.consecutive_failures)),
        ("last error", source.last_error or ""),
        ("last error at", when(source.last_error_at) if source.last_error_at else ""),
        ("next poll", next_poll(source, utcnow())),
        ("host breaker", breaker),
        ("posts", str(posts)),
        ("created", when(source.created_at)),
    ]
    for field, value in rows:
        table.add_row(field, value)
    console.print(table)


def _usual_gap(source: Source) -> str:
    from sigwatch.worker.cadence import format_duration

    if source.post_gap_s is None:
        return "not learnt yet (two new posts are needed)"
    gaps = f"{source.post_gap_samples} gap{'' if source.post_gap_samples == 1 else 's'}"
    return f"{format_duration(source.post_gap_s)} (a weighted mean of {gaps})"


async def _source_show(
    settings: Settings, source_id: int
) -> tuple[Source, dict[str, Any], int, str]:
    from sigwatch.db.sources import count_posts, get_source
    from sigwatch.manage.sources import shown_source_config

    secret_key = ensure_secret_key(settings)
    async with open_database(settings) as sessions, sessions() as session:
        source = await get_source(session, source_id, owner_id=None)
        posts = (await count_posts(session, [source_id]))[source_id]
        breaker = (await _breakers(settings, [source])).get(source_id, "unknown")
        return source, shown_source_config(source, secret_key), posts, breaker


def _freshness_shown(source: Source) -> str:
    """The source's own freshness thresholds, KEY=VALUE, or that the settings' apply."""
    if not source.freshness:
        return "the settings' thresholds"
    return ", ".join(f"{key}={json.dumps(value)}" for key, value in source.freshness.items())


def _freshness_overrides(assignments: list[str], *, reset: bool) -> dict[str, Any] | None:
    """``--freshness KEY=VALUE`` values read as JSON (numbers, true/false); None: no change."""
    if not assignments and not reset:
        return None
    given: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            raise fail(f"--freshness {assignment!r}: write KEY=VALUE", USAGE_ERROR)
        try:
            given[key.strip()] = json.loads(raw)
        except ValueError:
            given[key.strip()] = raw
    return given


@source_app.command("edit")
@friendly_errors
def source_edit(
    source_id: SourceId,
    name: Annotated[str | None, typer.Option("--name", help="New display name.")] = None,
    assignments: Assignments = None,
    interval: Interval = None,
    freshness: Annotated[
        list[str] | None,
        typer.Option(
            "--freshness",
            metavar="KEY=VALUE",
            help="A freshness threshold of this source, e.g. silence_factor=6 or enabled=false "
            "(see docs/sources.md); repeat for several.",
        ),
    ] = None,
    freshness_reset: Annotated[
        bool, typer.Option("--freshness-reset", help="Use the settings' freshness thresholds.")
    ] = False,
) -> None:
    """Change a source's name, options, interval or freshness thresholds; the rest is kept."""
    if name is None and not assignments and interval is None and not freshness:
        if not freshness_reset:
            raise fail(
                "say what to change: --name, --set KEY=VALUE, --interval or --freshness",
                USAGE_ERROR,
            )
    settings = cli_settings()
    overrides = _freshness_overrides(freshness or [], reset=freshness_reset)
    source = run(
        _source_edit(
            settings, source_id, name, assignments or [], interval, overrides, freshness_reset
        )
    )
    console.print(f"source {source.id} changed: {source.name}", highlight=False)


async def _source_edit(
    settings: Settings,
    source_id: int,
    name: str | None,
    assignments: list[str],
    interval: int | None,
    freshness: dict[str, Any] | None = None,
    freshness_reset: bool = False,
) -> Source:
    from sigwatch.db.sources import get_source
    from sigwatch.manage.sources import update_source

    secret_key = ensure_secret_key(settings)
    async with open_database(settings) as sessions, sessions.begin() as session:
        source = await get_source(session, source_id, owner_id=None)
        before = _audited(source, secret_key)
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if interval is not None:
            changes["poll_interval_s"] = interval
        if freshness is not None:  # given keys change, the others are kept (unless reset)
            kept = {} if freshness_reset else (source.freshness or {})
            changes["freshness"] = {**kept, **freshness}
        if assignments:
            model = _options_model(source.kind)
            given = parse_settings(source.kind, model, assignments, prompt_missing_secrets=False)
            # Secrets not given are left out, and storage keeps the stored ones.
            secrets = secret_names(model)
            kept = {k: v for k, v in source.config.items() if k not in secrets}
            config = {**kept, **given}
            check_options(source.kind, model, config, partial=True)
            changes["config"] = config
        source = await update_source(
            session, source_id, changes, owner_id=None, secret_key=secret_key, settings=settings
        )
        after = _audited(source, secret_key)
        await record_audit(session, "cli", "update", "source", source.id, before, after)
        return source


def _set_enabled(source_id: int, enabled: bool) -> None:
    settings = cli_settings()
    source = run(_source_set_enabled(settings, source_id, enabled))
    if enabled:
        console.print(f"source {source.id} resumed: it is polled again from now", highlight=False)
    else:
        console.print(
            f"source {source.id} paused: it is not polled until `sigwatch source resume "
            f"{source.id}`; its posts stay",
            highlight=False,
        )


async def _source_set_enabled(settings: Settings, source_id: int, enabled: bool) -> Source:
    from sigwatch.db.sources import get_source
    from sigwatch.manage.sources import update_source

    secret_key = ensure_secret_key(settings)
    async with open_database(settings) as sessions, sessions.begin() as session:
        source = await get_source(session, source_id, owner_id=None)
        before = _audited(source, secret_key)
        source = await update_source(
            session, source_id, {"enabled": enabled}, owner_id=None, secret_key=secret_key
        )
        after = _audited(source, secret_key)
        action = "resume" if enabled else "pause"
        await record_audit(session, "cli", action, "source", source.id, before, after)
        return source


@source_app.command("pause")
@friendly_errors
def source_pause(source_id: SourceId) -> None:
    """Stop polling a source until it is resumed; its posts and settings stay."""
    _set_enabled(source_id, False)


@source_app.command("resume")
@friendly_errors
def source_resume(source_id: SourceId) -> None:
    """Poll a paused source again."""
    _set_enabled(source_id, True)


@source_app.command("remove")
@friendly_errors
def source_remove(
    source_id: SourceId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a source: it is no longer polled or listed; its archived posts stay."""
    if not yes:
        typer.confirm(f"remove source {source_id}?", abort=True, err=True)
    settings = cli_settings()
    name = run(_source_remove(settings, source_id))
    console.print(
        f"source {source_id} removed: {name}; its posts stay in the archive", highlight=False
    )


async def _source_remove(settings: Settings, source_id: int) -> str:
    from sigwatch.db.sources import delete_source, get_source

    secret_key = ensure_secret_key(settings)
    async with open_database(settings) as sessions, sessions.begin() as session:
        before = _audited(await get_source(session, source_id, owner_id=None), secret_key)
        source = await delete_source(session, source_id, owner_id=None)
        await record_audit(session, "cli", "delete", "source", source_id, before, None)
        return source.name
