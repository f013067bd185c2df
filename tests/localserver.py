"""A real HTTP/1.1 server on a loopback address and port 0, run in a thread, for fetch tests.

Routes map a path (query string included when given) to a static answer or to a function that
writes the answer itself. The server records every request and counts TCP connections, so a test
can assert that the client never connected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Writer = Callable[["Handler"], None]


@dataclass
class Static:
    """A fixed answer; conditional GET is honoured when an ETag or Last-Modified is set."""

    body: bytes = b""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    method: str = "GET"
    body: bytes = b""


class Handler(BaseHTTPRequestHandler):
    """Looks the path up in the server's routes."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.owner.requests.append(
            Recorded(self.path, {k.lower(): v for k, v in self.headers.items()})
        )
        routes = self.server.owner.routes
        route = routes.get(self.path) or routes.get(self.path.split("?", 1)[0])
        if route is None:
            self.send_static(Static(b"not found", 404, {"Content-Type": "text/plain"}))
        elif isinstance(route, Static):
            self.send_static(route)
        else:
            route(self)

    def do_POST(self) -> None:
        """Record the request with its body, then answer as a GET of the same path would."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.owner.requests.append(
            Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, "POST", body)
        )
        self._answer_from_routes()

    def _answer_from_routes(self) -> None:
        """Answer from the routes without recording (the POST was recorded with its body)."""
        routes = self.server.owner.routes
        route = routes.get(self.path) or routes.get(self.path.split("?", 1)[0])
        if route is None:
            self.send_static(Static(b"not found", 404, {"Content-Type": "text/plain"}))
        elif isinstance(route, Static):
            self.send_static(route)
        else:
            route(self)

    def send_static(self, route: Static) -> None:
        """Write ``route``, or 304 when the request's validators match it."""
        headers = {k.lower(): v for k, v in route.headers.items()}
        etag = headers.get("etag")
        modified = headers.get("last-modified")
        if (etag and self.headers.get("If-None-Match") == etag) or (
            modified and self.headers.get("If-Modified-Since") == modified
        ):
            self.send_response(304)
            for name in ("etag", "last-modified"):
                if name in headers:
                    self.send_header(name, headers[name])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet; tests assert on ``requests`` instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LocalServer

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.owner.connections += 1
        return True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The client hanging up mid-body (size cap, timeout) is expected in these tests.
        pass


class LocalServer:
    """An HTTP server bound to ``host`` on a free port; start() and stop() it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.routes: dict[str, Static | Writer] = {}
        self.requests: list[Recorded] = []
        self.connections = 0
        self.stopping = threading.Event()
        self.bytes_sent = 0
        self._server = _Server((host, 0), Handler)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return f"http://{self.host}:{self.port}{path}"

    def _serve(self) -> None:
        # A short poll interval keeps stop() fast; the default makes every test wait 0.5 s.
        self._server.serve_forever(poll_interval=0.02)

    def start(self) -> LocalServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release sleeping handlers, stop serving and close the socket."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def serve(
        self,
        path: str,
        body: bytes = b"",
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Answer ``path`` with a fixed response; return its URL."""
        self.routes[path] = Static(body, status, dict(headers or {}))
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        """Answer ``path`` with a redirect to ``location``; return its URL."""
        return self.serve(path, status=status, headers={"Location": location})

    def sleep_then_serve(self, path: str, seconds: float, body: bytes = b"late") -> str:
        """Answer ``path`` only after ``seconds``; return its URL."""

        def write(handler: Handler) -> None:
            self.stopping.wait(seconds)
            handler.send_static(Static(body))

        self.routes[path] = write
        return self.url(path)

    def trickle(self, path: str, interval_s: float, total_s: float) -> str:
        """Answer ``path`` with headers, then one byte every ``interval_s`` for ``total_s``."""

        def write(handler: Handler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Length", str(int(total_s / interval_s) + 1))
            handler.end_headers()
            deadline = time.monotonic() + total_s
            while time.monotonic() < deadline and not self.stopping.is_set():
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(interval_s)

        self.routes[path] = write
        return self.url(path)

    def stream(self, path: str, total: int, *, chunked: bool, chunk: int = 64 * 1024) -> str:
        """Answer ``path`` with ``total`` bytes, chunked or with a Content-Length."""

        def write(handler: Handler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/xml")
            if chunked:
                handler.send_header("Transfer-Encoding", "chunked")
            else:
                handler.send_header("Content-Length", str(total))
            handler.end_headers()
            block = b"x" * chunk
            sent = 0
            try:
                while sent < total and not self.stopping.is_set():
                    piece = block[: min(chunk, total - sent)]
                    if chunked:
                        handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    else:
                        handler.wfile.write(piece)
                    sent += len(piece)
                    self.bytes_sent = sent
                if chunked:
                    handler.wfile.write(b"0\r\n\r\n")
            except OSError:
                handler.close_connection = True

        self.routes[path] = write
        return self.url(path)
