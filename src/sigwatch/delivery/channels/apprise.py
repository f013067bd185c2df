"""Notifications through Apprise URLs: Telegram, Discord, Slack, email and the other HTTP services.

Only the Apprise services sigwatch can guard are accepted (see :mod:`apprise_schemes`): those that
talk HTTP(S) through ``requests``, and e-mail through ``smtplib``. A send runs in a worker thread
under a timeout, inside :func:`~sigwatch.net.guard.checked_sockets`, so every socket Apprise opens
(each redirect hop and the mail server included) is checked against the SSRF policy at the
address it actually connects to. Messages are laid out and escaped by :mod:`apprise_format`.

Apprise only answers yes or no; to tell a rate limit from a revoked token, the HTTP answers it
gets are observed on the way back (see :func:`_install_answer_observer`).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import requests
import structlog
from apprise import Apprise, AppriseAsset, PersistentStoreMode
from apprise.plugins.base import NotifyBase
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from requests.adapters import HTTPAdapter

from sigwatch.delivery.channels.apprise_format import Formatted, format_for
from sigwatch.delivery.channels.apprise_schemes import plugin_refusal, scheme_refusal
from sigwatch.delivery.channels.base import DeliveryReceipt, error_for_answer, retry_after_s
from sigwatch.delivery.message import AlertMessage
from sigwatch.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from sigwatch.net.client import OutboundClient
from sigwatch.net.guard import SocketCheck, checked_sockets

log = structlog.get_logger(__name__)

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
# HTTPAdapter.send(request, stream, timeout, verify, cert, proxies): where ``proxies`` sits.
_PROXIES_ARG = 4


@dataclass(slots=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(slots=True)
class _Observation:
    """The HTTP answers and transport failures of one send, in order, and its socket check."""

    answers: list[_Answer] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    check: SocketCheck | None = None


_observation: contextvars.ContextVar[_Observation | None] = contextvars.ContextVar(
    "sigwatch_apprise_observation", default=None
)
_observer_lock = threading.Lock()
_observer_installed = False


def _install_answer_observer() -> None:
    """Wrap ``requests``' HTTPAdapter.send once so a send can see the answers Apprise got.

    Apprise plugins call ``requests.post`` directly and keep the response to themselves, so
    there is no per-call hook to pass in. The wrapper acts only while a send has set the context
    variable in its own thread: it names the host being dialled for the SSRF guard's messages,
    drops proxies taken from the environment (a proxy would be dialled instead of the checked
    address, as the outbound client also refuses) and records the answer. Every other use of
    ``requests`` passes straight through, unchanged.
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
            if observation.check is not None:
                observation.check.host = urlsplit(request.url or "").hostname
                if len(args) > _PROXIES_ARG:
                    args = (*args[:_PROXIES_ARG], {}, *args[_PROXIES_ARG + 1 :])
                else:
                    kwargs["proxies"] = {}
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
        # Refused by scheme before Apprise instantiates anything: some of those plugins set up
        # local resources (D-Bus, the system log) as they are built.
        refusal = scheme_refusal(url)
        if refusal is not None:
            raise ValueError(refusal)
        _refuse_file_params(url)
        plugin = _instantiate(url)
        if plugin is None:
            raise ValueError(
                "is not an Apprise URL sigwatch can use; see https://appriseit.com/services/ "
                "for the form of each service (e.g. tgram://bot-token/chat-id)"
            )
        refusal = plugin_refusal(plugin)
        if refusal is not None:
            raise ValueError(refusal)
        return SecretStr(url)


class AppriseChannel:
    """Sends alerts to the HTTP and e-mail services Apprise knows, formatted for each one."""

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
        # Checked again at send time: a channel stored before a scheme was refused, or options
        # built without validation, must not reach a plugin that opens its own sockets.
        refusal = scheme_refusal(self._url)
        if refusal is not None:
            raise PermanentDeliveryError(f"this channel's Apprise URL {_edit_hint(refusal)}")
        # A fresh plugin per send: Apprise plugins keep per-message state between calls.
        plugin = _instantiate(self._url)
        if plugin is None:
            raise PermanentDeliveryError(
                "the channel's Apprise URL is no longer valid: enter it again"
            )
        refusal = plugin_refusal(plugin)
        if refusal is not None:
            raise PermanentDeliveryError(f"this channel's Apprise URL {_edit_hint(refusal)}")
        service = str(getattr(plugin, "service_name", "Apprise"))
        # Apprise's own socket timeouts, so the thread ends about when the send gives up.
        plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, self._timeout_s)
        plugin.socket_read_timeout = min(plugin.socket_read_timeout, self._timeout_s)
        formatted = format_for(plugin, message)
        observation = _Observation()
        token = _observation.set(observation)
        try:
            accepted = self._notify_checked(plugin, formatted, observation)
        except Exception as exc:  # a plugin bug must not escape into the worker loop
            if observation.check is not None and observation.check.refusals:
                raise PermanentDeliveryError(str(observation.check.refusals[0])) from None
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
        if observation.check is not None and observation.check.refusals:
            # Apprise saw only a failed connection; the guard knows it refused the address.
            raise PermanentDeliveryError(str(observation.check.refusals[0]))
        raise _error_for(observation, service)

    def _notify_checked(
        self, plugin: NotifyBase, formatted: Formatted, observation: _Observation
    ) -> bool:
        """Let ``plugin`` send, every socket it opens checked by the channel's SSRF policy."""
        if self._policy is None:  # a client with a stand-in transport: no real sockets to guard
            return self._notify(plugin, formatted)
        with checked_sockets(self._policy) as check:
            observation.check = check
            smtp_host = getattr(plugin, "smtp_host", None)
            if isinstance(smtp_host, str) and smtp_host:
                check.host = smtp_host  # e-mail dials its server with smtplib, not requests
            return self._notify(plugin, formatted)

    @staticmethod
    def _notify(plugin: NotifyBase, formatted: Formatted) -> bool:
        return bool(
            plugin.notify(
                body=formatted.body, title=formatted.title, body_format=formatted.body_format
            )
        )


def _edit_hint(refusal: str) -> str:
    return f"is refused: {refusal}; edit the channel to use a supported service, or delete it"


def _error_for(observation: _Observation, service: str) -> DeliveryError:
    """The error behind a failed send, judged from the last refusal Apprise received."""
    for answer in reversed(observation.answers):
        if not 200 <= answer.status < 300:
            return error_for_answer(answer.status, answer.headers, answer.body, where=service)
    for answer in reversed(observation.answers):
        refusal = _api_refusal(answer.body)
        if refusal is not None:
            if refusal in _TRANSIENT_API_ERRORS:
                # A rate limit told in the body may still say when, in Retry-After.
                wait_s = retry_after_s(answer.headers, answer.body, rate_limited=True)
                hint = (
                    "retrying later" if wait_s is None else f"retrying after {wait_s:g}s as asked"
                )
                return TransientDeliveryError(
                    f"{service} answered {refusal}; {hint}", retry_after_s=wait_s
                )
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
