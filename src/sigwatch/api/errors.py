"""The one place where sigwatch errors become HTTP responses.

Routes raise domain errors (:mod:`sigwatch.errors`); the handlers here give each its status and a
body in FastAPI's own validation shape where a field is at fault::

    {"detail": [{"loc": ["body", "config", "url"], "msg": "...", "type": "value_error"}]}

Who must act decides the status. The caller's input (``InvalidInput``, and ``InvalidOptions``
for a kind's options, one entry per bad option) is a 422 naming the field. The deployment's
configuration (``ConfigError``: a missing or unsafe setting, secrets the current key cannot
open) is a 500 that says what is wrong, since no change to the request fixes it; it is logged
for the operator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from sigwatch.errors import (
    AuthError,
    ConfigError,
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidOptions,
    NotFound,
)

log = structlog.get_logger(__name__)

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})


def register_error_handlers(app: FastAPI) -> None:
    """Install the handlers that map domain and validation errors to responses."""
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(InvalidInput, _invalid_input)
    app.add_exception_handler(InvalidOptions, _invalid_options)
    app.add_exception_handler(ConfigError, _config_error)
    app.add_exception_handler(NotFound, _status(404))
    app.add_exception_handler(Conflict, _status(409))
    app.add_exception_handler(Forbidden, _status(403))
    app.add_exception_handler(AuthError, _auth_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)


def validation_error(errors: Sequence[dict[str, Any]]) -> JSONResponse:
    """A 422 listing each error's location, message and type, and nothing of the input."""
    detail = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error["type"]}
        for error in errors
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def internal_error(request_id: str) -> JSONResponse:
    """The 500 for an unexpected failure: no internals, the request id to quote when reporting."""
    return JSONResponse(
        {
            "detail": "internal error: it was logged; quote the request id when reporting it",
            "request_id": request_id,
        },
        status_code=500,
    )


async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    # A lost connection or a locked database is the service being unavailable, not a bug.
    log.warning("database unavailable", error=str(exc).splitlines()[0] if str(exc) else "")
    return JSONResponse(
        {"detail": "database unavailable; retry shortly (see /health/ready)"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # FastAPI's default echoes the input, which may be a password; keep only where and why.
    return validation_error(list(exc.errors()))


async def _invalid_input(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    return validation_error(
        [{"loc": _location(request, exc.field), "msg": exc.message, "type": "value_error"}]
    )


async def _invalid_options(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidOptions)
    # Options are always sent in the body, under "config", whatever the route's method. The
    # message repeats the option's name, for clients that show only the messages.
    return validation_error(
        [
            {
                "loc": ["body", "config", *problem.location],
                "msg": f"{'.'.join(str(part) for part in problem.location) or 'config'}: "
                f"{problem.message}",
                "type": problem.type,
            }
            for problem in exc.problems
        ]
    )


async def _config_error(request: Request, exc: Exception) -> JSONResponse:
    # Bad input is InvalidInput/InvalidOptions (a 422); what reaches here is the deployment's:
    # a setting, or stored secrets the current SIGWATCH_SECRET_KEY cannot open.
    log.error("server misconfigured", path=request.url.path, error=str(exc))
    return JSONResponse(
        {
            "detail": (
                f"the server's configuration stopped this request: {exc} "
                "(the operator has it in the server log)"
            )
        },
        status_code=500,
    )


async def _auth_error(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )


def _status(status_code: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_code)

    return handler


def _location(request: Request, field: str) -> list[str]:
    """The ``loc`` of a field named by InvalidInput: in the query, the path or the body."""
    parts = field.split(".")
    if parts[0] in ("body", "query", "path"):
        return parts
    if parts[0] in request.query_params:
        where = "query"
    elif parts[0] in request.path_params:
        where = "path"
    else:
        where = "body" if request.method in _WRITE_METHODS else "query"
    return [where, *parts]
