"""Alert messages laid out for each Apprise target and escaped for the markup it renders.

Every text that comes from a post or an alert is escaped for the markup its target renders:
HTML for Telegram and email, Markdown for Discord, plain text for Slack (Apprise escapes Slack's
three control characters) and for every other service. Mentions are broken with a zero-width
space after each ``@``, so ``@everyone`` in a headline pings nobody.
"""

from __future__ import annotations

import dataclasses
import html
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from apprise import NotifyFormat
from apprise.plugins.base import NotifyBase
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.slack import NotifySlack
from apprise.plugins.telegram import NotifyTelegram

from sigwatch.delivery.message import AlertMessage, EvidenceItem

with warnings.catch_warnings():
    # Apprise's email plugin imports imghdr for its PGP support, which Python 3.11 deprecates
    # (Apprise brings its own shim for 3.13, where imghdr is gone). The warning concerns
    # Apprise's code and would stop every test run that imports this module.
    warnings.filterwarnings("ignore", message="'imghdr' is deprecated", category=DeprecationWarning)
    from apprise.plugins.email import NotifyEmail

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
class Formatted:
    """A message ready for Apprise: title, body, and the format the body is written in."""

    title: str
    body: str
    body_format: NotifyFormat


def format_for(plugin: NotifyBase, message: AlertMessage) -> Formatted:
    """``message`` laid out and escaped for the service behind ``plugin``."""
    renderer: Callable[[AlertMessage, _Budget], Formatted]
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
    renderer: Callable[[AlertMessage, _Budget], Formatted],
    message: AlertMessage,
    budget: _Budget,
) -> Formatted:
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
    if message.system_alert is not None:  # a source's alarm: no confidence or urgency to tell
        return f"system alert · {_one_line(message.event)} · {_one_line(message.entity)}"
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


def _telegram(message: AlertMessage, budget: _Budget) -> Formatted:
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
    return Formatted("", "\n".join(lines), NotifyFormat.HTML)


def _discord(message: AlertMessage, budget: _Budget) -> Formatted:
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
    return Formatted("", "\n".join(lines), NotifyFormat.MARKDOWN)


def _plain_text(message: AlertMessage, budget: _Budget) -> Formatted:
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
    return Formatted(_unmention(_headline(message, budget)), "\n".join(lines), NotifyFormat.TEXT)


def _email(message: AlertMessage, budget: _Budget) -> Formatted:
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
    return Formatted(_headline(message, budget), "\n".join(parts), NotifyFormat.HTML)


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
