"""Local stand-ins for the receivers of notifications, on 127.0.0.1 and a free port.

- :class:`Receiver` records every request and answers from a queue of :class:`Reply` (the last
  reply repeats), optionally after a delay.
- :class:`FakeTelegram`, :class:`FakeDiscord` and :class:`FakeSlack` answer as the documented
  APIs do: Telegram's Bot API ``sendMessage`` (https://core.telegram.org/bots/api), Discord's
  Execute Webhook (https://discord.com/developers/docs/resources/webhook) and Slack's incoming
  webhooks (https://api.slack.com/messaging/webhooks), including their error bodies.
- :class:`WebhookReceiver` checks Standard Webhooks signatures with its own HMAC code, written
  from the specification rather than calling sigwatch's helpers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOSTILE = "*bold* <b>x</b> [link](http://evil) @everyone"
"""A headline that tries Markdown, HTML, a masked link and a mass ping at once."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Reply:
    """One answer: status, body, headers, and how long to wait before sending it."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def json_reply(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON answer."""
    return Reply(
        status,
        json.dumps(payload).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )


@dataclass
class Received:
    """One request as the receiver saw it; header names are lower case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        receiver = self.server.receiver
        received = Received(
            "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        reply = receiver.record(received)
        if reply.delay_s and receiver.stopping.wait(reply.delay_s):
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet; tests assert on ``received`` instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client giving up on a slow answer (a timeout test) is expected.
        pass


class Receiver:
    """An HTTP server on 127.0.0.1 that records POSTs and answers from a queue of replies."""

    default_reply = Reply(200, b"ok")

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.stopping = threading.Event()
        self._replies: list[Reply] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` here."""
        return f"http://127.0.0.1:{self.port}{path}"

    def reply(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies`` in order; the last one then repeats."""
        with self._lock:
            self._replies = list(replies)

    def record(self, received: Received) -> Reply:
        """Keep ``received`` and pick its reply."""
        with self._lock:
            self.received.append(received)
            if len(self._replies) > 1:
                return self._replies.pop(0)
            return self._replies[0] if self._replies else self.default_reply

    def start(self) -> Receiver:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release delayed replies, stop serving and close the socket."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class FakeTelegram(Receiver):
    """Telegram's Bot API: ``POST /bot<token>/sendMessage`` with a JSON body."""

    default_reply = json_reply(
        200,
        {
            "ok": True,
            "result": {"message_id": 1, "date": 0, "chat": {"id": 12345, "type": "private"}},
        },
    )

    @property
    def base(self) -> str:
        """What replaces ``https://api.telegram.org/bot``."""
        return self.url("/bot")

    def messages(self) -> list[dict[str, Any]]:
        """The JSON bodies of every ``sendMessage`` call."""
        return [r.json() for r in self.received if r.path.endswith("/sendMessage")]

    @staticmethod
    def error(status: int, description: str, retry_after: int | None = None) -> Reply:
        """An error as the Bot API answers it; 429s carry ``parameters.retry_after``."""
        payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            payload["parameters"] = {"retry_after": retry_after}
        return json_reply(status, payload)


class FakeDiscord(Receiver):
    """Discord's Execute Webhook: ``POST /api/webhooks/<id>/<token>?wait=true`` with JSON."""

    default_reply = json_reply(200, {"id": "1", "type": 0, "channel_id": "2", "content": ""})

    @property
    def base(self) -> str:
        """What replaces ``https://discord.com/api/webhooks``."""
        return self.url("/api/webhooks")

    def messages(self) -> list[dict[str, Any]]:
        """The JSON bodies of every webhook execution."""
        return [r.json() for r in self.received if r.path.startswith("/api/webhooks/")]

    @staticmethod
    def error(status: int, message: str, code: int = 0) -> Reply:
        """An error as Discord answers it: ``{"message", "code"}``."""
        return json_reply(status, {"message": message, "code": code})

    @staticmethod
    def rate_limited(retry_after_s: float) -> Reply:
        """A 429 with the body ``retry_after`` and the Retry-After header Discord sends.

        Discord also sends X-RateLimit-* headers; they are left out because Apprise would sleep
        until X-RateLimit-Reset (plus ten seconds of clock skew) before its own second try.
        """
        return json_reply(
            429,
            {
                "message": "You are being rate limited.",
                "retry_after": retry_after_s,
                "global": False,
            },
            {"Retry-After": str(math.ceil(retry_after_s))},
        )


class FakeSlack(Receiver):
    """Slack's incoming webhooks: ``POST /services/T…/B…/…`` with JSON; answers plain text."""

    default_reply = Reply(200, b"ok", {"Content-Type": "text/html"})

    @property
    def base(self) -> str:
        """What replaces ``https://hooks.slack.com/services``."""
        return self.url("/services")

    def messages(self) -> list[dict[str, Any]]:
        """The JSON bodies of every webhook call."""
        return [r.json() for r in self.received if r.path.startswith("/services/")]

    @staticmethod
    def error(status: int, code: str, headers: Mapping[str, str] | None = None) -> Reply:
        """An error as incoming webhooks answer it: a short text code such as invalid_token."""
        return Reply(status, code.encode(), {"Content-Type": "text/html", **(headers or {})})


class WebhookReceiver(Receiver):
    """Records webhooks and checks each signature independently, per Standard Webhooks."""

    default_reply = Reply(204)

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.key = base64.b64decode(secret.removeprefix("whsec_"))

    def signature_is_valid(self, received: Received) -> bool:
        """True when one ``v1`` signature of ``received`` is HMAC-SHA256 of id.timestamp.body."""
        webhook_id = received.headers["webhook-id"]
        timestamp = received.headers["webhook-timestamp"]
        content = webhook_id.encode() + b"." + timestamp.encode() + b"." + received.body
        expected = base64.b64encode(hmac.new(self.key, content, hashlib.sha256).digest())
        offered = [
            entry.split(",", 1)[1].encode()
            for entry in received.headers["webhook-signature"].split(" ")
            if entry.startswith("v1,")
        ]
        return any(hmac.compare_digest(expected, signature) for signature in offered)
