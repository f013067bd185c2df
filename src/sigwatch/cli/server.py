"""Running sigwatch: everything in one process (``up``), or the API and workers apart."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated, Any

import typer

from sigwatch.cli.common import cli_settings, console, friendly_errors, open_database, run
from sigwatch.config import Settings, load_settings


def register(app: typer.Typer) -> None:
    """Add ``up``, ``api`` and ``worker`` to ``app``."""
    app.command()(up)
    app.command()(api)
    app.command()(worker)


@friendly_errors
def up(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[bool, typer.Option(help="Add offline demo feeds and an admin.")] = False,
) -> None:
    """Run everything in one process: API, live stream, scheduler and workers."""
    from sigwatch.api.app import create_app

    overrides: dict[str, Any] = {}
    if demo:
        from sigwatch.demo.setup import DEMO_POLL_INTERVAL_S

        # The demo feeds are served by this very process on loopback.
        base = load_settings()
        overrides["allowed_private_networks"] = [*base.allowed_private_networks, "127.0.0.1/32"]
        # They publish every few seconds and cost nothing to poll; no platform to spare.
        overrides["min_poll_interval_rss_s"] = min(
            base.min_poll_interval_rss_s, DEMO_POLL_INTERVAL_S
        )
    settings = cli_settings(**overrides)
    demo_base_url = f"http://127.0.0.1:{port}"
    run(_prepare_up(settings, demo_base_url if demo else None))
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
    async with open_database(settings) as sessions:
        if demo_base_url is None:
            return
        from sigwatch.demo.setup import setup_demo

        created = await setup_demo(sessions, demo_base_url, settings=settings)
    if created.admin_password is not None:
        console.print(
            "[bold green]Demo admin created[/] — username [bold]admin[/], password "
            f"[bold]{created.admin_password}[/] (shown once; keep it)."
        )
    if created.sources:
        console.print(f"Demo sources: {created.sources} feeds served offline by this process.")


@friendly_errors
def api(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the API alone (scale out: several API processes, workers apart)."""
    from sigwatch.api.app import create_app

    settings = cli_settings()
    run(_check_current(settings))
    _serve(create_app(settings), host, port)


async def _check_current(settings: Settings) -> None:
    async with open_database(settings, migrate=False):
        pass


@friendly_errors
def worker() -> None:
    """Run the collection worker loop alone; SIGTERM finishes in-flight polls and exits 0."""
    settings = cli_settings()
    run(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    from sigwatch.live.bus import create_bus
    from sigwatch.worker.runner import Worker

    async with open_database(settings, migrate=False) as sessions:
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
