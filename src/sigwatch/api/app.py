"""The FastAPI app: routers, error handlers, middleware, and the lifespan that owns resources."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import Depends, FastAPI
from redis.asyncio import Redis
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

import sigwatch
from sigwatch.api.deps import Runtime, get_principal
from sigwatch.api.errors import register_error_handlers
from sigwatch.api.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from sigwatch.api.openapi import document_error_responses
from sigwatch.api.ratelimit import create_rate_limiter, install_rate_limits
from sigwatch.api.routes import (
    alerts,
    api_keys,
    channels,
    deliveries,
    detect,
    entities,
    health,
    jobs,
    kinds,
    posts,
    rules,
    sources,
    subscriptions,
    system_alerts,
    users,
)
from sigwatch.api.routes import (
    auth as auth_routes,
)
from sigwatch.api.routes import live as live_routes
from sigwatch.api.routes import websub as websub_routes
from sigwatch.api.swagger_ui import install_swagger_ui
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import require_current
from sigwatch.errors import ConfigError, DatabaseOutOfDate
from sigwatch.live.bus import create_bus

#: Connect and read timeouts of the Redis client, so a hung Redis cannot hang readiness.
REDIS_TIMEOUT_S = 3.0

log = structlog.get_logger("sigwatch.api")


def create_app(settings: Settings, *, run_worker: bool = False) -> FastAPI:
    """Build the API app; with ``run_worker`` it also polls sources in the same process."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start_runtime(settings)
        app.state.runtime = runtime
        stop = asyncio.Event()
        worker = _start_worker(runtime, stop) if run_worker else None
        # Everything built so far lives as long as the process: move it out of the collector's
        # sight, so full collections stay short and do not stall live fan-out (p99 latency).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                await _stop_worker(worker)
            await live_routes.close_live_hub(app)
            await close_runtime(runtime)

    app = FastAPI(
        title="sigwatch",
        version=sigwatch.__version__,
        summary="Self-hosted signal monitor: sources, posts, watchlist and collection jobs.",
        lifespan=lifespan,
        # FastAPI's /docs and /redoc load their assets from a CDN; ours are served from here.
        docs_url=None,
        redoc_url=None,
    )
    install_swagger_ui(app)
    register_error_handlers(app)
    # Innermost of the middleware: a refused request still gets its request id and access log.
    install_rate_limits(app)
    app.add_middleware(BodySizeLimitMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health.router)
    app.include_router(auth_routes.router)
    # Before the alerts router, whose /alerts/{alert_id} would otherwise take /alerts/stream;
    # the live routes authenticate themselves (WebSockets take credentials as query parameters).
    app.include_router(live_routes.router)
    # Hubs carry no credentials: the callback's token and the pushes' HMAC authenticate them.
    app.include_router(websub_routes.router)
    # Every resource router requires a caller; routes that need one ask for it again (cached).
    authenticated = [Depends(get_principal)]
    for module in (
        users,
        api_keys,
        sources,
        jobs,
        posts,
        entities,
        alerts,
        detect,
        rules,
        channels,
        subscriptions,
        deliveries,
        system_alerts,
        kinds,
    ):
        app.include_router(module.router, dependencies=authenticated)
    document_error_responses(app)
    return app


async def start_runtime(settings: Settings) -> Runtime:
    """Load the signing key, connect the database (checking its schema) and Redis if configured.

    An out-of-date schema stops startup; an unreachable database does not, so the process comes
    up and reports itself not ready until the database answers.
    """
    secret_key = ensure_secret_key(settings)
    engine = create_engine(settings)
    try:
        schema_checked = await _check_schema(engine)
        redis = _redis_client(settings.redis_url) if settings.redis_url else None
        bus = create_bus(settings)
    except BaseException:
        await engine.dispose()
        raise
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        secret_key=secret_key,
        redis=redis,
        schema_checked=schema_checked,
        bus=bus,
        rate_limiter=create_rate_limiter(settings, redis),
    )


async def close_runtime(runtime: Runtime) -> None:
    """Close the live bus, the Redis client and the database pool."""
    await runtime.bus.close()
    if runtime.redis is not None:
        await runtime.redis.aclose()
    await runtime.engine.dispose()


async def _check_schema(engine: AsyncEngine) -> bool:
    try:
        await require_current(engine)
    except DatabaseOutOfDate as exc:
        log.error("database schema out of date", error=str(exc))
        raise
    except (OSError, SQLAlchemyError) as exc:
        log.warning(
            "database unreachable at startup; readiness reports it until it answers",
            database=engine.url.render_as_string(hide_password=True),
            error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        return False
    return True


def _redis_client(url: str) -> Redis:
    try:
        return Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
        )
    except ValueError as exc:
        raise ConfigError(
            f"SIGWATCH_REDIS_URL is not a Redis URL ({exc}): use redis://host:6379/0"
        ) from exc


def _start_worker(runtime: Runtime, stop: asyncio.Event) -> asyncio.Task[None]:
    # Imported here: an API-only process never loads the worker and its outbound client.
    from sigwatch.worker.runner import Worker

    worker = Worker(runtime.settings, runtime.sessions, bus=runtime.bus)
    task = asyncio.create_task(worker.run(stop), name="sigwatch-worker")
    task.add_done_callback(_report_worker_exit)
    return task


def _report_worker_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("worker stopped unexpectedly", error=repr(task.exception()))


async def _stop_worker(task: asyncio.Task[None]) -> None:
    try:
        await task
    except Exception:
        # Already reported by _report_worker_exit; shutdown goes on.
        pass
