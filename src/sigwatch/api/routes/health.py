"""Liveness, readiness and Prometheus metrics: unauthenticated, for probes and scrapers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from sqlalchemy.exc import DBAPIError

from sigwatch.api.deps import Runtime, RuntimeDep
from sigwatch.api.schemas import ReadinessOut
from sigwatch.db.engine import ping_database
from sigwatch.db.migrate import require_current
from sigwatch.errors import DatabaseOutOfDate
from sigwatch.observability.metrics import REGISTRY

#: Longest wait for one component; a probe must answer before the orchestrator gives up on it.
CHECK_TIMEOUT_S = 5.0

router = APIRouter(tags=["health"])


@router.get("/health/live")
async def live() -> dict[str, str]:
    """Answer 200 whenever the process runs."""
    return {"status": "ok"}


@router.get(
    "/health/ready",
    response_model=ReadinessOut,
    responses={503: {"model": ReadinessOut, "description": "A component is unavailable."}},
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """Answer 200 when the database (and Redis, when configured) answer; 503 naming what fails."""
    checks: dict[str, Awaitable[str | None]] = {"database": _check_database(runtime)}
    if runtime.redis is not None:
        checks["redis"] = _check_redis(runtime.redis)
    outcomes = await asyncio.gather(*checks.values())
    failed = {name: reason for name, reason in zip(checks, outcomes, strict=True) if reason}
    body = ReadinessOut(
        status="unavailable" if failed else "ok",
        checks={name: reason or "ok" for name, reason in zip(checks, outcomes, strict=True)},
        failed=failed,
    )
    return JSONResponse(body.model_dump(), status_code=503 if failed else 200)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Every sigwatch metric in the Prometheus text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def _check_database(runtime: Runtime) -> str | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await ping_database(runtime.engine)
            if not runtime.schema_checked:
                # The database was down at startup, so its schema has not been checked yet.
                await require_current(runtime.engine)
                runtime.schema_checked = True
    except DatabaseOutOfDate as exc:
        return str(exc)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S:g} s"
    except Exception as exc:  # a probe reports any failure as a reason, it never fails itself
        return _reason(exc)
    return None


async def _check_redis(redis: Redis) -> str | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await redis.ping()
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S:g} s"
    except Exception as exc:  # as above: report, never raise
        return _reason(exc)
    return None


def _reason(exc: BaseException) -> str:
    """A one-line reason: the driver's own error where SQLAlchemy wrapped one."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    lines = str(exc).strip().splitlines()
    message = lines[0] if lines else ""
    reason = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return reason[:300]
