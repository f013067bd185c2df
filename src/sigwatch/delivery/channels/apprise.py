"""Notifications through Apprise URLs: Telegram, Discord, Slack, email and the many others.

Every text that comes from a post or an alert is escaped for the markup its target renders:
HTML for Telegram and email, Markdown for Discord, plain text for Slack (Apprise escapes Slack's
three control characters) and for every other service. Mentions are broken with a zero-width
space after each ``@``, so ``@everyone`` in a headline pings nobody.

Apprise sends with ``requests``, blocking, so each send runs in a worker thread under a timeout.
Apprise only answers yes or no; to tell a rate limit from a revoked token, the HTTP answers it
gets are observed on the way back (see :func:`_install_answer_observer`).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import html
import ipaddress
import json
import re
import socket
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlsplit

import requests
import structlog
from apprise import Apprise, AppriseAsset, NotifyFormat, PersistentStoreMode
from apprise.plugins.base import NotifyBase
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.slack import NotifySlack
from apprise.plugins.telegram import NotifyTelegram
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from requests.adapters import HTTPAdapter

from sigwatch.delivery.channels.base import DeliveryReceipt, error_for_answer
from sigwatch.delivery.message import AlertMessage, EvidenceItem
from sigwatch.errors import (
    BlockedAddress,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from sigwatch.net.client import OutboundClient
from sigwatch.net.guard import AddressPolicy

log = structlog.get_logger(__name__)

with warnings.catch_warnings():
    # Apprise's email plugin imports imghdr for its PGP support, which Python 3.11 deprecates
    # (Apprise brings its own shim for 3.13, where imghdr is gone). The warning concerns
    # Apprise's code and would stop every test run that imports this module.
    warnings.filterwarnings("ignore", message="'imghdr' is deprecated", category=DeprecationWarning)
    from apprise.plugins.email import NotifyEmail

# Query parameters through which an Apprise URL makes the plugin read a local file or fetch a
# URL of the user's choosing (Discord/Slack/Telegram templates, FCM and Web Push key files).
_FILE_PARAMS = frozenset({"template", "keyfile", "subfile"})
# Slack's Web API answers 200 with {"ok": false, "error": ...}; these errors are worth a retry.
_TRANSIENT_API_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)
_ANSWER_BYTES = 4096
_ZWSP = "\u200b"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DISCORD_SPECIALS = frozenset("\\*_~`|<>#-+[]()")
# Characters left as they are in a URL shown to a chat service; the rest is percent-encoded so
# a URL cannot close the markup around it ("<", ">", quotes, brackets) or mention anyone ("@").
_URL_SAFE = "/:?#&=%+,;.~-_!$"


@dataclass(frozen=True, slots=True)
class _Budget:
    """How much of a message a target can take, in characters of the final body."""

    max_chars: int
    evidence: int
    summary_chars: int = 600
    excerpt_chars: int = 200
    title_chars: int = 200


@dataclass(frozen=True, slots=True)
class _Formatted:
    """A message ready for Apprise: title, body, and the format the body is written in."""

    title: str
    body: str
    body_format: NotifyFormat


@dataclass(slots=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(slots=True)
class _Observation:
    """The HTTP answers and transport failures of one send, in order."""

    answers: list[_Answer] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    policy: AddressPolicy | None = None


_observation: contextvars.ContextVar[_Observation | None] = contextvars.ContextVar(
    "sigwatch_apprise_observation", default=None
)
_observer_lock = threading.Lock()
_observer_installed = False


def _install_answer_observer() -> None:
    """Wrap ``requests``' HTTPAdapter.send once so a send can see the answers Apprise got.

    Apprise plugins call ``requests.post`` directly and keep the response to themselves, so
    there is no per-call hook to pass in. The wrapper records answers only while a send has set
    the context variable in its own thread; every other use of ``requests`` passes straight
    through, unchanged.
    """
    global _observer_installed
    with _observer_lock:
        if _observer_installed:
            return
        original = HTTPAdapter.send

        def send(
            self: HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any
        ) -> requests.Response:
            observation = _observation.get()
            if observation is None:
                return original(self, request, *args, **kwargs)
            if observation.policy is not None:
                _check_destination(observation.policy, request.url or "")
            try:
                response = original(self, request, *args, **kwargs)
            except requests.RequestException as exc:
                observation.failures.append(exc)
                raise
            streamed = kwargs.get("stream", args[0] if args else False)
            body = b"" if streamed else (response.content or b"")[:_ANSWER_BYTES]
            observation.answers.append(_Answer(response.status_code, response.headers, body))
            return response

        setattr(HTTPAdapter, "send", send)  # noqa: B010 (mypy refuses assigning to a method)
        _observer_installed = True


def _check_destination(policy: AddressPolicy, url: str) -> None:
    """Apply the SSRF guard to a request Apprise is about to make (BlockedAddress if refused).

    Apprise dials with ``requests``, not with sigwatch's client, so the guard is applied here,
    after DNS resolution, on every request it makes (redirects included, as requests sends each
    hop through the adapter). A name that resolves differently between this check and the
    connection could still slip through; the outbound client, which checks at connect time, has
    no such gap.
    """
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return  # requests will fail to resolve it too, and report that
    for info in infos:
        policy.check(host, ipaddress.ip_address(info[4][0]))


def _asset() -> AppriseAsset:
    # Memory-only storage: Apprise must not write state files somewhere in the server's home.
    return AppriseAsset(
        app_id="sigwatch", app_desc="sigwatch alerts", storage_mode=PersistentStoreMode.MEMORY
    )


def _instantiate(url: str) -> NotifyBase | None:
    plugin: NotifyBase | None = Apprise.instantiate(url, asset=_asset(), suppress_exceptions=True)
    return plugin


def _refuse_file_params(url: str) -> None:
    for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if name.lower() in _FILE_PARAMS and any(mark in value for mark in "/\\:"):
            raise ValueError(
                f"the {name}= parameter reads a file or URL, which sigwatch does not allow; "
                "remove it (sigwatch formats the message itself)"
            )


class AppriseOptions(BaseModel):
    """An Apprise channel: one Apprise URL, and how long one send may take."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: SecretStr = Field(description="An Apprise URL, e.g. tgram://bot-token/chat-id.")
    timeout_s: float = Field(30.0, gt=0, le=300, description="Longest time one send may take.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value().strip()
        _refuse_file_params(url)
        if _instantiate(url) is None:
            raise ValueError(
                "is not an Apprise URL sigwatch can use; see https://appriseit.com/services/ "
                "for the form of each service (e.g. tgram://bot-token/chat-id)"
            )
        return SecretStr(url)


class AppriseChannel:
    """Sends alerts to any service Apprise knows, formatted and escaped for that service."""

    kind: ClassVar[str] = "apprise"
    Options: ClassVar[type[BaseModel]] = AppriseOptions

    def __init__(self, options: AppriseOptions, client: OutboundClient) -> None:
        # Apprise makes its own connections; only the client's SSRF policy is used here.
        self._policy = client.address_policy
        self._url = options.url.get_secret_value()
        self._timeout_s = options.timeout_s
        _install_answer_observer()

    async def send(self, message: AlertMessage) -> DeliveryReceipt:
        """Send ``message`` through Apprise in a thread; map its failure to a DeliveryError."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await asyncio.to_thread(self._send_blocking, message)
        except TimeoutError:
            # The thread cannot be stopped and may still deliver: the retry may then repeat it,
            # which at-least-once delivery allows.
            raise TransientDeliveryError(
                f"Apprise did not finish within {self._timeout_s:g}s; the service is slow or "
                "unreachable; raise the channel's timeout_s if it is merely slow"
            ) from None

    def _send_blocking(self, message: AlertMessage) -> DeliveryReceipt:
        # A fresh plugin per send: Apprise plugins keep per-message state between calls.
        plugin = _instantiate(self._url)
        if plugin is None:
            raise PermanentDeliveryError(
                "the channel's Apprise URL is no longer valid: enter it again"
            )
        service = str(getattr(plugin, "service_name", "Apprise"))
        # Apprise's own socket timeouts, so the thread ends about when the send gives up.
        plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, self._timeout_s)
        plugin.socket_read_timeout = min(plugin.socket_read_timeout, self._timeout_s)
        formatted = _format_for(plugin, message)
        observation = _Observation(policy=self._policy)
        smtp_host = getattr(plugin, "smtp_host", None)
        if self._policy is not None and isinstance(smtp_host, str) and smtp_host:
            try:  # e-mail goes over smtplib, not requests: check the mail server here
                _check_destination(self._policy, f"smtp://{smtp_host}")
            except BlockedAddress as exc:
                raise PermanentDeliveryError(str(exc)) from None
        token = _observation.set(observation)
        try:
            accepted = plugin.notify(
                body=formatted.body, title=formatted.title, body_format=formatted.body_format
            )
        except BlockedAddress as exc:
            raise PermanentDeliveryError(str(exc)) from None
        except Exception as exc:  # a plugin bug must not escape into the worker loop
            # Only the type: an Apprise exception's text may quote the URL and its token.
            log.warning("apprise plugin failed", service=service, error=type(exc).__name__)
            raise TransientDeliveryError(
                f"{service} failed inside Apprise ({type(exc).__name__}); retrying later"
            ) from None
        finally:
            _observation.reset(token)
        if accepted:
            statuses = [answer.status for answer in observation.answers]
            return DeliveryReceipt(statuses[-1] if statuses else None, f"{service} accepted")
        raise _error_for(observation, service)


def _error_for(observation: _Observation, service: str) -> DeliveryError:
    """The error behind a failed send, judged from the last refusal Apprise received."""
    for answer in reversed(observation.answers):
        if not 200 <= answer.status < 300:
            return error_for_answer(answer.status, answer.headers, answer.body, where=service)
    for answer in reversed(observation.answers):
        refusal = _api_refusal(answer.body)
        if refusal is not None:
            if refusal in _TRANSIENT_API_ERRORS:
                return TransientDeliveryError(f"{service} answered {refusal}; retrying later")
            return PermanentDeliveryError(
                f"{service} refused the message ({refusal}): check the token, channel and "
                "permissions in the channel's Apprise URL"
            )
    if observation.failures:
        failure = observation.failures[-1]
        what = "timed out" if isinstance(failure, requests.Timeout) else "could not be reached"
        return TransientDeliveryError(
            f"{service} {what} ({type(failure).__name__}); retrying later"
        )
    return TransientDeliveryError(
        f"{service} did not accept the message and gave no HTTP answer; for email check the "
        "server, port, user and password in the mailto URL; retrying later"
    )


def _api_refusal(body: bytes) -> str | None:
    """The ``error`` of a JSON ``{"ok": false, "error": ...}`` answer, as Slack's Web API sends."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(payload, dict) and payload.get("ok") is False:
        error = payload.get("error") or payload.get("description") or "ok: false"
        return str(error)[:100]
    return None


# --- formatting ---------------------------------------------------------------------------------


def _format_for(plugin: NotifyBase, message: AlertMessage) -> _Formatted:
    """``message`` laid out and escaped for the service behind ``plugin``."""
    renderer: Callable[[AlertMessage, _Budget], _Formatted]
    if isinstance(plugin, NotifyTelegram):
        renderer, budget = _telegram, _Budget(max_chars=4000, evidence=5)
    elif isinstance(plugin, NotifyDiscord):
        renderer, budget = _discord, _Budget(max_chars=1900, evidence=3)
    elif isinstance(plugin, NotifySlack):
        # Plain text: Slack then shows *, _ and ~ as typed, and Apprise escapes &, < and >
        # (Slack's documented escaping), which turns <!channel> or <url|label> into inert text.
        renderer, budget = _plain_text, _Budget(max_chars=3000, evidence=5)
    elif isinstance(plugin, NotifyEmail):
        renderer, budget = _email, _Budget(max_chars=100_000, evidence=20, excerpt_chars=500)
    else:
        renderer, budget = _plain_text, _Budget(max_chars=1000, evidence=3)
    return _fit(renderer, message, budget)


def _fit(
    renderer: Callable[[AlertMessage, _Budget], _Formatted],
    message: AlertMessage,
    budget: _Budget,
) -> _Formatted:
    """Render, dropping evidence then shortening texts until the body fits the target.

    Cutting the rendered body instead could split an escape sequence or an HTML tag.
    """
    current = budget
    while True:
        formatted = renderer(message, current)
        if len(formatted.body) <= budget.max_chars:
            return formatted
        if current.evidence > 0:
            current = dataclasses.replace(current, evidence=current.evidence - 1)
        elif current.summary_chars > 50 or current.title_chars > 50:
            current = dataclasses.replace(
                current,
                summary_chars=max(current.summary_chars // 2, 50),
                title_chars=max(current.title_chars // 2, 50),
            )
        else:
            return formatted


def _headline(message: AlertMessage, budget: _Budget) -> str:
    prefix = {"updated": "Updated: ", "test": "Test: "}.get(message.kind, "")
    return _one_line(prefix + _cut(message.title, budget.title_chars))


def _facts(message: AlertMessage) -> str:
    return (
        f"{_one_line(message.event)} · {_one_line(message.entity)} · confidence "
        f"{round(message.confidence * 100)}% · urgency {_one_line(message.urgency)}"
    )


def _evidence_line(item: EvidenceItem, budget: _Budget) -> str:
    who = f"{_one_line(item.source)} — {_one_line(item.author)}" if item.author else item.source
    return f"{_one_line(who)}: {_one_line(_cut(item.excerpt, budget.excerpt_chars))}"


def _more(message: AlertMessage, shown: int) -> str | None:
    hidden = len(message.evidence) - shown
    return f"and {hidden} more source{'s' if hidden != 1 else ''}" if hidden > 0 else None


def _telegram(message: AlertMessage, budget: _Budget) -> _Formatted:
    def text(value: str) -> str:
        return html.escape(_unmention(value), quote=False)

    lines = [f"<b>{text(_headline(message, budget))}</b>", text(_facts(message)), ""]
    lines.append(text(_cut(message.summary, budget.summary_chars)))
    link = _safe_url(message.url)
    if link:
        lines.append(f'<a href="{html.escape(link)}">Open</a>')
    items = message.evidence[: budget.evidence]
    if items:
        lines += ["", "<b>Evidence</b>"]
        for item in items:
            url = _safe_url(item.url)
            suffix = f' <a href="{html.escape(url)}">link</a>' if url else ""
            lines.append(f"• {text(_evidence_line(item, budget))}{suffix}")
        more = _more(message, len(items))
        if more:
            lines.append(text(more))
    return _Formatted("", "\n".join(lines), NotifyFormat.HTML)


def _discord(message: AlertMessage, budget: _Budget) -> _Formatted:
    def text(value: str) -> str:
        escaped = "".join(f"\\{c}" if c in _DISCORD_SPECIALS else c for c in value)
        return _unmention(escaped)

    lines = [f"**{text(_headline(message, budget))}**", text(_facts(message)), ""]
    lines.append(text(_cut(message.summary, budget.summary_chars)))
    link = _safe_url(message.url)
    if link:
        lines.append(f"<{link}>")  # angle brackets: a link without a preview card
    items = message.evidence[: budget.evidence]
    if items:
        lines += ["", "**Evidence**"]
        for item in items:
            url = _safe_url(item.url)
            lines.append(f"• {text(_evidence_line(item, budget))}" + (f" <{url}>" if url else ""))
        more = _more(message, len(items))
        if more:
            lines.append(text(more))
    return _Formatted("", "\n".join(lines), NotifyFormat.MARKDOWN)


def _plain_text(message: AlertMessage, budget: _Budget) -> _Formatted:
    lines = [
        _unmention(_facts(message)),
        "",
        _unmention(_cut(message.summary, budget.summary_chars)),
    ]
    link = _safe_url(message.url)
    if link:
        lines.append(link)
    items = message.evidence[: budget.evidence]
    if items:
        lines += ["", "Evidence:"]
        for item in items:
            url = _safe_url(item.url)
            lines.append(
                f"- {_unmention(_evidence_line(item, budget))}" + (f" {url}" if url else "")
            )
        more = _more(message, len(items))
        if more:
            lines.append(more)
    return _Formatted(_unmention(_headline(message, budget)), "\n".join(lines), NotifyFormat.TEXT)


def _email(message: AlertMessage, budget: _Budget) -> _Formatted:
    def text(value: str) -> str:
        return html.escape(value, quote=False)

    parts = [
        f"<p><strong>{text(_headline(message, budget))}</strong><br>{text(_facts(message))}</p>",
        f"<p>{text(_cut(message.summary, budget.summary_chars))}</p>",
    ]
    link = _safe_url(message.url)
    if link:
        parts.append(f'<p><a href="{html.escape(link)}">{text(link)}</a></p>')
    items = message.evidence[: budget.evidence]
    if items:
        rows = []
        for item in items:
            url = _safe_url(item.url)
            suffix = f' (<a href="{html.escape(url)}">link</a>)' if url else ""
            rows.append(f"<li>{text(_evidence_line(item, budget))}{suffix}</li>")
        more = _more(message, len(items))
        if more:
            rows.append(f"<li>{text(more)}</li>")
        parts.append("<p><strong>Evidence</strong></p><ul>" + "".join(rows) + "</ul>")
    # The subject is a mail header: plain text on one line, never markup.
    return _Formatted(_headline(message, budget), "\n".join(parts), NotifyFormat.HTML)


def _unmention(value: str) -> str:
    """``value`` with a zero-width space after each ``@``: no @everyone, @here or <@id> pings."""
    return value.replace("@", "@" + _ZWSP)


def _one_line(value: str) -> str:
    """``value`` on one line, without control characters (a subject line must stay one header)."""
    return " ".join(_CONTROL.sub(" ", value).split())


def _cut(value: str, limit: int) -> str:
    value = value.strip()
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def _safe_url(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) URL, percent-encoded so markup cannot break out."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if any(c.isspace() or ord(c) < 32 for c in url):
        return None
    return quote(url, safe=_URL_SAFE)
