"""Per-request context (a request id in every log line and response, metrics, one access log
line) and the limits every request body is held to (size, JSON nesting).

Written as plain ASGI rather than ``BaseHTTPMiddleware``, which would copy every response body
through an extra task and break streaming.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sigwatch.api.errors import internal_error, validation_error
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
#: Deepest nesting of ``[`` and ``{`` accepted in a JSON body or message. sigwatch's own documents
#: nest a few levels; Python's parser and validators recurse per level and fail near 1,000.
MAX_JSON_DEPTH = 64

_JSON_TYPES = ("application/json",)
#: A JSON string, escapes included; an unterminated one runs to the end of the body.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_A_BRACKET = re.compile(rb"[^\[\]{}]+")


def json_nests_deeper_than(document: bytes, max_depth: int) -> bool:
    """Whether ``document`` opens more than ``max_depth`` ``[``/``{`` at once, outside strings.

    A linear scan that never parses: it runs before the parser, which would recurse once per
    level and overflow the stack on a deep enough document.
    """
    if document.count(b"[") + document.count(b"{") <= max_depth:
        return False  # the common case, decided at C speed
    brackets = _NOT_A_BRACKET.sub(b"", _JSON_STRING.sub(b"", document))
    depth = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


class BodySizeLimitMiddleware:
    """Read each request body whole before the app sees it, and refuse bodies the app must not:

    over ``max_bytes`` (by Content-Length, or counted as a chunked body streams in) with 413;
    JSON that is not Unicode text, or nested deeper than ``max_depth``, with 422. All are
    answered before any route runs, so every route gets the same limits and no parser or
    validator ever sees such a body.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int = MAX_REQUEST_BYTES, max_depth: int = MAX_JSON_DEPTH
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length", "").strip()
        if length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        received = 0
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before its body ended: nobody to answer
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more_body = bool(message.get("more_body", False))
        body = b"".join(chunks)
        if body and _is_json(headers.get("content-type")):
            problem = self._json_problem(body)
            if problem is not None:
                await validation_error([{"loc": ["body"], **problem}])(scope, receive, send)
                return
        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # then http.disconnect, as the server reports it

        await self.app(scope, replay_receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {
                "detail": f"request body larger than {self.max_bytes} bytes; "
                "send less (split the request, or leave out what is not needed)"
            },
            status_code=413,
        )
        await response(scope, receive, send)

    def _json_problem(self, body: bytes) -> dict[str, str] | None:
        """Why a JSON body must not reach the parser (``msg`` and ``type``), or None."""
        encoding = json.detect_encoding(body)
        try:
            body.decode(encoding)
        except UnicodeDecodeError as exc:
            # The parser would raise UnicodeDecodeError, which FastAPI answers with a bare 400.
            return {
                "msg": f"the JSON body is not valid {encoding.upper()} text (byte {exc.start}): "
                "send JSON encoded as UTF-8",
                "type": "json_invalid",
            }
        if json_nests_deeper_than(body, self.max_depth):
            return {
                "msg": f"the JSON body nests deeper than {self.max_depth} levels of arrays and "
                f"objects; send a flatter document (at most {self.max_depth} levels)",
                "type": "json_too_deep",
            }
        return None


def _is_json(content_type: str | None) -> bool:
    """Whether a body of this type may be parsed as JSON: a JSON type, or no type at all."""
    if content_type is None:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type in _JSON_TYPES or media_type.endswith("+json") or not media_type


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
