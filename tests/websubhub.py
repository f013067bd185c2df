"""A small WebSub hub on 127.0.0.1 for tests: takes subscribe requests, verifies them against
the subscriber's callback, and pushes signed content, as the W3C recommendation describes.

It answers a (un)subscribe request with 202 and then, from a thread of its own, sends the
verification GET (hub.mode, hub.topic, hub.challenge, hub.lease_seconds) to the callback; only a
2xx answer whose body is the challenge makes the subscription count. With ``deny`` set it sends
hub.mode=denied instead. :meth:`WebSubHub.publish` POSTs content to every verified callback of a
topic with ``X-Hub-Signature: sha256=<HMAC of the body under the subscriber's secret>``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode


@dataclass
class HubSubscription:
    """A callback the hub verified for a topic, with the secret it signs pushes with."""

    topic: str
    callback: str
    secret: str
    lease_s: int


@dataclass
class Verification:
    """One verification GET the hub sent, and what the subscriber answered."""

    mode: str
    callback: str
    status: int
    body: str
    challenge: str


@dataclass
class WebSubHub:
    """The hub's state; start() serves it on 127.0.0.1, port 0."""

    lease_s: int = 3600
    deny: bool = False
    refuse_with: int | None = None  # answer subscribe requests with this status instead of 202
    requests: list[dict[str, str]] = field(default_factory=list)
    verifications: list[Verification] = field(default_factory=list)
    subscriptions: dict[tuple[str, str], HubSubscription] = field(default_factory=dict)
    verified: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> WebSubHub:
        """Serve in a background thread."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hub = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        """The hub's URL, as a feed names it."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/hub"

    def wait_for_verifications(self, count: int, timeout_s: float = 10.0) -> list[Verification]:
        """Block until ``count`` verifications (or denials) were sent; return them all."""
        with self.verified:
            if not self.verified.wait_for(lambda: len(self.verifications) >= count, timeout_s):
                raise AssertionError(f"the hub sent {len(self.verifications)} of {count} GETs")
            return list(self.verifications)

    def publish(self, topic: str, body: bytes, *, forge: bool = False) -> list[int]:
        """Push ``body`` to every verified subscriber of ``topic``; their answers' statuses.

        ``forge`` signs with a wrong key, as someone without the secret would.
        """
        statuses = []
        for sub in [s for s in self.subscriptions.values() if s.topic == topic]:
            key = secrets.token_hex(32) if forge else sub.secret
            signature = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
            statuses.append(
                send(
                    sub.callback,
                    body,
                    {
                        "Content-Type": "application/rss+xml",
                        "X-Hub-Signature": f"sha256={signature}",
                        "Link": f'<{self.url}>; rel="hub", <{topic}>; rel="self"',
                    },
                )[0]
            )
        return statuses

    def handle_request(self, form: dict[str, str]) -> int:
        """Take a (un)subscribe request: 202, then verify it from another thread."""
        self.requests.append(form)
        if self.refuse_with is not None:
            return self.refuse_with
        threading.Thread(target=self._verify, args=(form,), daemon=True).start()
        return 202

    def _verify(self, form: dict[str, str]) -> None:
        mode, topic, callback = form["hub.mode"], form["hub.topic"], form["hub.callback"]
        challenge = secrets.token_urlsafe(16)
        if self.deny:
            query = {"hub.mode": "denied", "hub.topic": topic, "hub.reason": "not allowed here"}
        else:
            query = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge}
            if mode == "subscribe":
                query["hub.lease_seconds"] = str(self.lease_s)
        status, body = send(f"{callback}?{urlencode(query)}", None, {})
        confirmed = 200 <= status < 300 and body == challenge
        if confirmed and mode == "subscribe":
            self.subscriptions[(topic, callback)] = HubSubscription(
                topic, callback, form.get("hub.secret", ""), self.lease_s
            )
        elif confirmed and mode == "unsubscribe":
            self.subscriptions.pop((topic, callback), None)
        with self.verified:
            self.verifications.append(
                Verification(query["hub.mode"], callback, status, body, challenge)
            )
            self.verified.notify_all()


def send(url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, str]:
    """GET (no body) or POST ``url``; the answer's status and text, error statuses included."""
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        status = self.server.hub.handle_request(form)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet; tests assert on the hub's records."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: WebSubHub
