"""The ``sigwatch`` command line: parses arguments and hands over to the packages."""

from __future__ import annotations

import asyncio
import functools
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TextIO, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.config import Settings, load_settings
from sigwatch.db.audit import record_audit, snapshot
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import require_current, upgrade
from sigwatch.errors import NotFound, SigwatchError
from sigwatch.observability.logging import configure_logging

app = typer.Typer(
    name="sigwatch",
    help="Watch feeds and accounts for token launches, listings and airdrops; alert in real time.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
config_app = typer.Typer(help="Settings.", no_args_is_help=True)
user_app = typer.Typer(help="Users who sign in to the API and dashboard.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for scripts and integrations.", no_args_is_help=True)
source_app = typer.Typer(help="Sources to collect posts from.", no_args_is_help=True)
source_add_app = typer.Typer(help="Add a source.", no_args_is_help=True)
export_app = typer.Typer(help="Export the archive.", no_args_is_help=True)
watchlist_app = typer.Typer(
    help="The watchlist: entities and rule overrides.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")
app.add_typer(source_app, name="source")
source_app.add_typer(source_add_app, name="add")
app.add_typer(export_app, name="export")
app.add_typer(watchlist_app, name="watchlist")
deliveries_app = typer.Typer(
    help="The outbox: notifications sent, pending and dead.", no_args_is_help=True
)
app.add_typer(deliveries_app, name="deliveries")

console = Console()
errors = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def _fail(message: str, code: int = 1) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn sigwatch's own errors into one readable line and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except SigwatchError as exc:
            raise _fail(str(exc)) from None

    return wrapper


def _settings(**overrides: Any) -> Settings:
    settings = load_settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    return settings


@asynccontextmanager
async def _database(
    settings: Settings, *, migrate: bool = True
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Open the database (upgrading it first, or checking it is current) for one command."""
    engine = create_engine(settings)
    try:
        await (upgrade(engine) if migrate else require_current(engine))
        yield session_factory(engine)
    finally:
        await engine.dispose()


def _run(coroutine: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coroutine)


# --- running -----------------------------------------------------------------------------------


@app.command()
@friendly_errors
def up(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[bool, typer.Option(help="Add offline demo feeds and an admin.")] = False,
) -> None:
    """Run everything in one process: API, dashboard, scheduler and workers."""
    from sigwatch.api.app import create_app

    overrides: dict[str, Any] = {}
    if demo:
        # The demo feeds are served by this very process on loopback.
        base = load_settings()
        overrides["allowed_private_networks"] = [*base.allowed_private_networks, "127.0.0.1/32"]
    settings = _settings(**overrides)
    demo_base_url = f"http://127.0.0.1:{port}"
    _run(_prepare_up(settings, demo_base_url if demo else None))
    application = create_app(settings, run_worker=True)
    if demo:
        from sigwatch.demo.routes import router as demo_router

        application.include_router(demo_router)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    console.print(f"[bold]sigwatch[/] is starting on [link={url}]{url}[/link]")
    console.print(f"  API docs    {url}/docs")
    console.print(f"  posts       {url}/api/v1/posts")
    console.print(f"  health      {url}/health/ready")
    console.print(f"  metrics     {url}/metrics")
    console.print("  Stop with Ctrl-C.")
    _serve(application, host, port)


def _serve(application: Any, host: str, port: int) -> None:
    """Run the ASGI app with uvicorn until SIGTERM or Ctrl-C, then exit 0 after a clean stop."""
    import uvicorn

    # uvicorn re-raises the stop signal after its graceful shutdown so that the process dies of
    # it; with these handlers in place that re-raise is a no-op and the exit status stays 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # Alerts are serialised once for every client; per-connection compression would redo it.
        ws_per_message_deflate=False,
    )


async def _prepare_up(settings: Settings, demo_base_url: str | None) -> None:
    async with _database(settings) as sessions:
        if demo_base_url is None:
            return
        from sigwatch.demo.setup import setup_demo

        created = await setup_demo(sessions, demo_base_url)
    if created.admin_password is not None:
        console.print(
            "[bold green]Demo admin created[/] — username [bold]admin[/], password "
            f"[bold]{created.admin_password}[/] (shown once; keep it)."
        )
    if created.sources:
        console.print(f"Demo sources: {created.sources} feeds served offline by this process.")


@app.command()
@friendly_errors
def api(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the API alone (scale out: several API processes, workers apart)."""
    from sigwatch.api.app import create_app

    settings = _settings()
    _run(_check_current(settings))
    _serve(create_app(settings), host, port)


async def _check_current(settings: Settings) -> None:
    async with _database(settings, migrate=False):
        pass


@app.command()
@friendly_errors
def worker() -> None:
    """Run the collection worker loop alone; SIGTERM finishes in-flight polls and exits 0."""
    settings = _settings()
    _run(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    from sigwatch.live.bus import create_bus
    from sigwatch.worker.runner import Worker

    async with _database(settings, migrate=False) as sessions:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        # With Redis, alerts this worker makes reach the live clients of every API process.
        bus = create_bus(settings)
        try:
            await Worker(settings, sessions, bus=bus).run(stop)
        finally:
            await bus.close()


# --- database and settings ---------------------------------------------------------------------


@db_app.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Bring the database schema to the newest revision."""
    settings = _settings()
    _run(_db_upgrade(settings))
    console.print("database is up to date")


async def _db_upgrade(settings: Settings) -> None:
    async with _database(settings):
        pass


@config_app.command("show")
@friendly_errors
def config_show() -> None:
    """Print the effective settings, secrets masked."""
    settings = load_settings()
    table = Table("setting", "value", "environment variable")
    for name, value in settings.masked().items():
        table.add_row(name, "" if value is None else str(value), f"SIGWATCH_{name.upper()}")
    console.print(table)


# --- users and keys ----------------------------------------------------------------------------


@user_app.command("create")
@friendly_errors
def user_create(
    name: Annotated[str, typer.Argument(help="Username.")],
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user; prompts for the password unless --password-stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise _fail("the password needs at least 8 characters")
    settings = _settings()
    _run(_user_create(settings, name, password, "admin" if admin else "user"))
    console.print(f"user [bold]{name}[/] created ({'admin' if admin else 'user'})")


async def _user_create(settings: Settings, name: str, password: str, role: str) -> None:
    from sigwatch.auth import hash_password
    from sigwatch.db.users import create_user

    async with _database(settings) as sessions, sessions.begin() as session:
        user = await create_user(
            session, username=name, password_hash=hash_password(password), role=role
        )
        await record_audit(session, "cli", "create", "user", user.id, None, snapshot(user))


@user_app.command("passwd")
@friendly_errors
def user_passwd(
    name: Annotated[str, typer.Argument(help="Username.")],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", "--stdin", help="Read the new password from standard input."
        ),
    ] = False,
) -> None:
    """Set a user's password (prompts twice unless --stdin); their tokens stop working."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise _fail("the password needs at least 8 characters")
    settings = _settings()
    _run(_user_passwd(settings, name, password))
    console.print(
        f"password of [bold]{name}[/] changed; its earlier tokens no longer work and any "
        "sign-in lock is lifted"
    )


async def _user_passwd(settings: Settings, name: str, password: str) -> None:
    from sigwatch.api.login_guard import unlock_account
    from sigwatch.auth import hash_password
    from sigwatch.db.users import get_user_by_username, update_user

    async with _database(settings) as sessions, sessions.begin() as session:
        user = await get_user_by_username(session, name)
        if user is None:
            raise NotFound(_NO_SUCH_USER.format(name=name))
        before = snapshot(user)
        user = await update_user(session, user.id, {"password_hash": hash_password(password)})
        after = snapshot(user)
        await record_audit(session, "cli", "password_change", "user", user.id, before, after)
        await unlock_account(session, "cli", user)


@user_app.command("unlock")
@friendly_errors
def user_unlock(name: Annotated[str, typer.Argument(help="Username.")]) -> None:
    """Lift a user's sign-in lock after failed passwords, and forget those failures."""
    settings = _settings()
    unlocked = _run(_user_unlock(settings, name))
    if unlocked:
        console.print(f"[bold]{name}[/] unlocked: password sign-in works again")
    else:
        console.print(f"[bold]{name}[/] was not locked and had no failed sign-ins to forget")


async def _user_unlock(settings: Settings, name: str) -> bool:
    from sigwatch.api.login_guard import unlock_account
    from sigwatch.db.users import get_user_by_username

    async with _database(settings) as sessions, sessions.begin() as session:
        user = await get_user_by_username(session, name)
        if user is None:
            raise NotFound(_NO_SUCH_USER.format(name=name))
        return await unlock_account(session, "cli", user)


_NO_SUCH_USER = "no user {name!r}: check the spelling, or create it with `sigwatch user create`"


@apikey_app.command("create")
@friendly_errors
def apikey_create(
    user: Annotated[str, typer.Option("--user", help="Username the key acts as.")],
    name: Annotated[str, typer.Option("--name", help="A label to recognise the key by.")] = "",
) -> None:
    """Create an API key for a user; the key is printed once, as the last line."""
    settings = _settings()
    key = _run(_apikey_create(settings, user, name))
    errors.print("API key created; it is shown only now. Send it in the X-API-Key header.")
    print(key)


async def _apikey_create(settings: Settings, username: str, name: str) -> str:
    from sigwatch.db.api_keys import create_api_key
    from sigwatch.db.users import get_user_by_username

    async with _database(settings) as sessions, sessions.begin() as session:
        user = await get_user_by_username(session, username)
        if user is None:
            raise NotFound(
                f"no user {username!r}: create one with `sigwatch user create {username}`"
            )
        api_key, key = await create_api_key(session, user_id=user.id, name=name)
        await record_audit(session, "cli", "create", "api_key", api_key.id, None, snapshot(api_key))
    return key


# --- sources -----------------------------------------------------------------------------------


@source_add_app.command("rss")
@friendly_errors
def source_add_rss(
    url: Annotated[str, typer.Argument(help="Feed URL, or a site's home page to find it on.")],
    interval: Annotated[
        int | None, typer.Option("--interval", help="Seconds between polls.", min=10)
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
) -> None:
    """Add an RSS/Atom feed; a home page is searched for its feed."""
    settings = _settings()
    source_id, feed_url = _run(_source_add_rss(settings, url, interval, name))
    console.print(f"source {source_id} added: {feed_url}")


async def _source_add_rss(
    settings: Settings, url: str, interval: int | None, name: str | None
) -> tuple[int, str]:
    from sigwatch.db.sources import create_source
    from sigwatch.net.client import OutboundClient
    from sigwatch.sources.discover import discover_feed

    async with OutboundClient.from_settings(settings) as client:
        feed_url = await discover_feed(client, url)
    async with _database(settings) as sessions, sessions.begin() as session:
        source = await create_source(
            session,
            kind="rss",
            name=name or _name_from_url(feed_url),
            config={"url": feed_url},
            poll_interval_s=interval or settings.poll_interval_s,
            owner_id=None,
        )
        await record_audit(session, "cli", "create", "source", source.id, None, snapshot(source))
        return source.id, feed_url


def _name_from_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return (parts.hostname or url) + (parts.path if parts.path not in ("", "/") else "")


@source_app.command("list")
@friendly_errors
def source_list() -> None:
    """List sources with their health."""
    settings = _settings()
    sources = _run(_source_list(settings))
    table = Table("id", "kind", "name", "enabled", "interval", "last success", "failures", "error")
    for source in sources:
        table.add_row(
            str(source.id),
            source.kind,
            source.name,
            "yes" if source.enabled else "no",
            f"{source.poll_interval_s}s",
            _when(source.last_success_at),
            str(source.consecutive_failures),
            (source.last_error or "")[:80],
        )
    console.print(table)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "never"


async def _source_list(settings: Settings) -> list[Any]:
    from sigwatch.db.sources import list_all_sources

    async with _database(settings) as sessions, sessions() as session:
        return await list_all_sources(session)


@source_app.command("import")
@friendly_errors
def source_import(
    file: Annotated[Path, typer.Argument(help="OPML file exported by a feed reader.")],
    interval: Annotated[
        int | None, typer.Option("--interval", help="Seconds between polls.", min=10)
    ] = None,
) -> None:
    """Import RSS/Atom feeds from an OPML file; feeds already present are skipped."""
    from sigwatch.sources.opml import parse_opml

    if not file.exists():
        raise _fail(f"{file} does not exist")
    feeds = parse_opml(file.read_bytes())
    settings = _settings()
    added, skipped = _run(_source_import(settings, feeds, interval))
    console.print(f"imported {added} feeds, skipped {skipped} already present")


async def _source_import(
    settings: Settings, feeds: list[Any], interval: int | None
) -> tuple[int, int]:
    from sigwatch.db.sources import create_source, list_all_sources

    async with _database(settings) as sessions, sessions.begin() as session:
        present = {
            source.config.get("url") for source in await list_all_sources(session, kind="rss")
        }
        added = 0
        for feed in feeds:
            if feed.url in present:
                continue
            source = await create_source(
                session,
                kind="rss",
                name=feed.title or _name_from_url(feed.url),
                config={"url": feed.url},
                poll_interval_s=interval or settings.poll_interval_s,
                owner_id=None,
            )
            await record_audit(
                session, "cli", "import", "source", source.id, None, snapshot(source)
            )
            present.add(feed.url)
            added += 1
    return added, len(feeds) - added


@source_app.command("export")
@friendly_errors
def source_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default stdout.")
    ] = None,
) -> None:
    """Export the RSS/Atom sources as OPML."""
    from sigwatch.sources.opml import OpmlFeed, write_opml

    settings = _settings()
    sources = _run(_source_list_rss(settings))
    data = write_opml(
        [OpmlFeed(title=s.name, url=s.config["url"], category=None) for s in sources],
        title="sigwatch sources",
    )
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        errors.print(f"wrote {len(sources)} feeds to {output}")


async def _source_list_rss(settings: Settings) -> list[Any]:
    from sigwatch.db.sources import list_all_sources

    async with _database(settings) as sessions, sessions() as session:
        return await list_all_sources(session, kind="rss")


# --- collecting, searching, exporting ----------------------------------------------------------


@app.command()
@friendly_errors
def collect(
    source: Annotated[
        list[int] | None, typer.Option("--source", help="Source id; repeat for several.")
    ] = None,
    all_sources: Annotated[bool, typer.Option("--all", help="Every enabled source.")] = False,
) -> None:
    """Poll sources once now, with a progress bar."""
    if not source and not all_sources:
        raise _fail("say which sources: --source ID (repeatable) or --all", code=2)
    settings = _settings()
    outcomes = _run(_collect(settings, None if all_sources else source))
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
    from sigwatch.worker.runner import collect_once

    async with _database(settings) as sessions:
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


@app.command()
@friendly_errors
def search(
    query: Annotated[str, typer.Argument(help="Words to find (all must match).")],
    limit: Annotated[int, typer.Option(help="Most results to show.", min=1, max=1000)] = 20,
) -> None:
    """Full-text search over the archive."""
    settings = _settings()
    posts = _run(_search(settings, query, limit))
    for post in posts:
        headline = (post.title or post.text).replace("\n", " ")[:160]
        console.print(
            f"[dim]{_when(post.published_at)}  source {post.source_id}[/]  {headline}",
            soft_wrap=True,
            highlight=False,
            markup=True,
        )
        if post.url:
            console.print(f"    {post.url}", soft_wrap=True, highlight=False, style="cyan")
    console.print(f"{len(posts)} posts")


async def _search(settings: Settings, query: str, limit: int) -> list[Any]:
    from sigwatch.db.posts import list_posts

    async with _database(settings) as sessions, sessions() as session:
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
        raise _fail(f"unknown format {fmt!r}: use --format csv or --format jsonl", code=2)
    settings = _settings()
    count = _run(_export_posts(settings, fmt, output, source, query))
    errors.print(f"exported {count} posts" + (f" to {output}" if output else ""))


async def _export_posts(
    settings: Settings, fmt: str, output: Path | None, source_id: int | None, q: str | None
) -> int:
    from sigwatch.export import iter_posts, write_posts

    async with _database(settings) as sessions:
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


# --- detection -----------------------------------------------------------------------------------


@watchlist_app.command("import")
@friendly_errors
def watchlist_import(
    file: Annotated[Path, typer.Argument(help="Watchlist YAML: entities and optional rules.")],
) -> None:
    """Add or update entities by name and replace the rule overrides; all or nothing."""
    from sigwatch.detect import load_watchlist_yaml

    if not file.exists():
        raise _fail(f"{file} does not exist")
    parsed = load_watchlist_yaml(file.read_text(encoding="utf-8"))
    settings = _settings()
    added, updated, rules = _run(_watchlist_import(settings, parsed))
    console.print(f"watchlist imported: {added} entities added, {updated} updated, {rules} rules")


async def _watchlist_import(settings: Settings, parsed: Any) -> tuple[int, int, int]:
    from sigwatch.db.watchlist import import_watchlist

    async with _database(settings) as sessions, sessions.begin() as session:
        return await import_watchlist(session, parsed, actor="cli")


@watchlist_app.command("export")
@friendly_errors
def watchlist_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default stdout.")
    ] = None,
) -> None:
    """Write the watchlist as YAML, in the format watchlist import reads."""
    settings = _settings()
    document = _run(_watchlist_export(settings))
    if output is None:
        sys.stdout.write(document)
    else:
        output.write_text(document, encoding="utf-8")
        errors.print(f"wrote the watchlist to {output}")


async def _watchlist_export(settings: Settings) -> str:
    from sigwatch.db.watchlist import load_watchlist
    from sigwatch.detect import dump_watchlist_yaml

    async with _database(settings) as sessions, sessions() as session:
        return dump_watchlist_yaml((await load_watchlist(session)).watchlist)


@app.command()
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
        raise _fail(f"{watchlist} does not exist: give a watchlist YAML with --watchlist")
    if input_file is not None and not input_file.exists():
        raise _fail(f"{input_file} does not exist")
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


@app.command()
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
            raise _fail(f"{watchlist} does not exist")
        parsed = load_watchlist_yaml(watchlist.read_text(encoding="utf-8"))
    settings = _settings()
    report = _run(_backtest(settings, parsed, _utc(since), _utc(until), min_confidence))
    table = Table("first evidence", "entity", "event", "confidence", "evidence", "title")
    for alert in report.alerts:
        table.add_row(
            _when(alert.first_evidence_at),
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
    from sigwatch.alerts.backtest import run_backtest
    from sigwatch.alerts.record import Detector, alert_threshold
    from sigwatch.db.watchlist import load_watchlist
    from sigwatch.detect import build_index
    from sigwatch.export import iter_posts

    async with _database(settings) as sessions:
        async with sessions() as session:
            stored = await load_watchlist(session)
        detector = Detector(
            build_index(parsed if parsed is not None else stored.watchlist), stored.entity_ids
        )
        threshold = alert_threshold(settings) if min_confidence is None else min_confidence
        with Progress(
            TextColumn("replaying"), TextColumn("{task.completed} posts"), console=errors
        ) as progress:
            task = progress.add_task("replay", total=None)
            return await run_backtest(
                iter_posts(sessions, since=since, until=until),
                detector,
                min_confidence=threshold,
                on_progress=lambda n: progress.update(task, completed=n),
            )


# --- deliveries ----------------------------------------------------------------------------------


@deliveries_app.command("list")
@friendly_errors
def deliveries_list(
    status: Annotated[
        str | None, typer.Option(help="pending, sent or dead (dead letters).")
    ] = "dead",
    limit: Annotated[int, typer.Option(min=1, max=200, help="Most rows to show.")] = 50,
) -> None:
    """List deliveries, dead letters by default, newest first, with the reason they failed."""
    if status not in (None, "pending", "sent", "dead"):
        raise _fail(f"unknown status {status!r}: use pending, sent or dead", code=2)
    settings = _settings()
    rows = _run(_deliveries_list(settings, status, limit))
    table = Table("id", "alert", "channel", "kind", "status", "attempts", "error")
    for row in rows:
        table.add_row(
            str(row.id),
            str(row.alert_id or ""),
            str(row.channel_id),
            row.kind,
            row.status,
            str(row.attempts),
            (row.last_error or "")[:80],
        )
    console.print(table)
    console.print(f"{len(rows)} deliveries")


async def _deliveries_list(settings: Settings, status: str | None, limit: int) -> list[Any]:
    from sigwatch.db.deliveries import list_deliveries

    async with _database(settings) as sessions, sessions() as session:
        return (await list_deliveries(session, owner_id=None, status=status, limit=limit)).items


@deliveries_app.command("requeue")
@friendly_errors
def deliveries_requeue(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead delivery ids.")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead letter.")] = False,
) -> None:
    """Send dead letters again, from their first attempt (after fixing the channel)."""
    if not ids and not all_dead:
        raise _fail("say which: delivery ids, or --all-dead", code=2)
    settings = _settings()
    count = _run(_deliveries_requeue(settings, None if all_dead else ids))
    console.print(f"requeued {count} deliveries")


async def _deliveries_requeue(settings: Settings, ids: list[int] | None) -> int:
    from sigwatch.db.deliveries import requeue_dead_letters, requeue_deliveries

    async with _database(settings) as sessions, sessions.begin() as session:
        if ids is None:
            total = 0
            while batch := await requeue_dead_letters(session, owner_id=None):
                total += len(batch)
            return total
        return len(await requeue_deliveries(session, ids, owner_id=None))
