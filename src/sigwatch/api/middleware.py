"""Per-request context: a request id in every log line and response, metrics, one access log line.

Written as plain ASGI rather than ``BaseHTTPMiddleware``, which would copy every response body
through an extra task and break streaming.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sigwatch.api.errors import internal_error
from sigwatch.observability.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

REQUEST_ID_HEADER = "X-Request-ID"
#: An incoming request id is kept only if it is short and plain, so it cannot forge log lines.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Probes and scrapes arrive every few seconds; their access lines are logged at debug level.
_QUIET_ROUTES = frozenset({"/health/live", "/health/ready", "/metrics", "/demo/feeds/{slug}.xml"})
#: The route label of requests that matched no route, so raw paths never become label values.
UNMATCHED_ROUTE = "unmatched"

log = structlog.get_logger("sigwatch.api")


class RequestContextMiddleware:
    """Give each HTTP request an id, count and time it by route template, and log it once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        # Handlers read it as request.state.request_id.
        scope.setdefault("state", {})["request_id"] = request_id
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
        status = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_request_id)
            except Exception:
                log.exception("unhandled error", method=method, route=route_template(scope))
                if response_started:
                    raise
                # Answered here rather than re-raised: the error is logged once, with its id.
                await internal_error(request_id)(scope, receive, send_with_request_id)
            finally:
                elapsed = time.perf_counter() - started
                route = route_template(scope)
                HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
                HTTP_REQUEST_DURATION.labels(route=route).observe(elapsed)
                emit = log.debug if route in _QUIET_ROUTES else log.info
                emit(
                    "request handled",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 1),
                )


#: Largest request body accepted; sigwatch's requests are small JSON documents.
MAX_REQUEST_BYTES = 1_048_576


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or as they stream."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_REQUEST_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {self.max_bytes} bytes; send less"},
            status_code=413,
        )
        await response(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def route_template(scope: Scope) -> str:
    """The matched route's path template, such as ``/api/v1/sources/{source_id}``."""
    template = getattr(scope.get("route"), "path_format", None)
    if not template and scope.get("endpoint") is not None:
        # Routes the app adds itself (/openapi.json, /docs) leave only their endpoint in scope.
        for route in getattr(scope.get("app"), "routes", ()):
            if getattr(route, "endpoint", None) is scope["endpoint"]:
                template = getattr(route, "path_format", None)
                break
    return template if isinstance(template, str) and template else UNMATCHED_ROUTE


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _SANE_REQUEST_ID.fullmatch(candidate) else None
    return None
