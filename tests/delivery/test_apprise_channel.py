"""Apprise channels against local fakes of Telegram, Discord and Slack, and a real SMTP server.

How the fakes are reached: see tests/delivery/conftest.py. Each Apprise plugin keeps its API base
in one class attribute; the ``telegram``, ``discord`` and ``slack`` fixtures point it at a local
server for the duration of the test, and Apprise does everything else as in production.
"""

from __future__ import annotations

import asyncio
import email
import re
import time
from email.message import Message
from html.parser import HTMLParser

import pytest
from apprise.plugins.slack import NotifySlack
from apprise.plugins.telegram import NotifyTelegram
from chatfakes import (
    HOSTILE,
    FakeDiscord,
    FakeSlack,
    FakeTelegram,
    Receiver,
    Reply,
    free_port,
    json_reply,
)
from pydantic import ValidationError

from sigwatch.delivery.channels.apprise import AppriseChannel, AppriseOptions
from sigwatch.delivery.message import EvidenceItem
from sigwatch.errors import PermanentDeliveryError, TransientDeliveryError
from sigwatch.net.client import OutboundClient

TELEGRAM_URL = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/12345"
DISCORD_URL = "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js"
SLACK_URL = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
ZWSP = "\u200b"
# What a hostile summary adds: Slack and Discord mention syntax, an entity, a masked link.
HOSTILE_SUMMARY = HOSTILE + " & &lt;i&gt; <!channel> <@U024BE7LH> <@&165511591545143296> @here"


#: Apprise channels take only the SSRF policy from the client: this one allows 127.0.0.1 only.
LOOPBACK_CLIENT = OutboundClient(
    timeout_s=5.0,
    max_response_bytes=100_000,
    max_redirects=0,
    user_agent="sigwatch-test/1",
    allowed_networks=["127.0.0.1/32"],
)


def channel(url: str, timeout_s: float = 5.0) -> AppriseChannel:
    return AppriseChannel(AppriseOptions(url=url, timeout_s=timeout_s), LOOPBACK_CLIENT)


async def test_apprise_to_a_private_address_is_refused_without_connecting(make_message):
    with pytest.raises(PermanentDeliveryError, match="refused to connect to 10.0.0.1"):
        await channel("json://10.0.0.1:9/hook", timeout_s=3).send(make_message())
    with pytest.raises(PermanentDeliveryError, match="refused to connect"):
        url = "mailto://127.0.0.2:2525?from=sigwatch@example.com&to=alice@example.com"
        await channel(url).send(make_message())


def hostile(make_message, **overrides):
    evidence = [
        EvidenceItem(
            source="X <i>src</i>",
            url='https://x.com/a)"><b>(http://evil)',
            author="@everyone",
            published_at=None,
            excerpt="**wow** <script>alert(1)</script> [click](javascript:alert(1))",
        ),
        EvidenceItem(
            source="Blog",
            url="javascript:alert(1)",
            author=None,
            published_at=None,
            excerpt="_quiet_",
        ),
    ]
    fields = {"title": HOSTILE, "summary": HOSTILE_SUMMARY, "evidence": evidence}
    fields.update(overrides)
    return make_message(**fields)


class Markup(HTMLParser):
    """Collects the tags, link targets and text of an HTML fragment."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.text = ""
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.hrefs += [value for name, value in attrs if name == "href"]

    def handle_data(self, data):
        self.text += data


# --- hostile text arrives inert -----------------------------------------------------------------


async def test_telegram_gets_html_with_every_user_text_escaped(telegram, make_message):
    message = hostile(make_message)

    receipt = await channel(TELEGRAM_URL).send(message)

    assert receipt.status_code == 200
    [sent] = telegram.messages()
    assert sent["parse_mode"] == "HTML"
    assert sent["chat_id"] == 12345
    markup = Markup(sent["text"])
    assert set(markup.tags) <= {"b", "a"}  # only sigwatch's own markup
    assert markup.tags.count("b") == 2  # the headline and "Evidence"
    assert markup.hrefs == [
        "https://example.com/alerts/42",
        "https://x.com/a%29%22%3E%3Cb%3E%28http://evil%29",
    ]  # the javascript: URL is dropped, the other cannot break out of its attribute
    shown = markup.text.replace(ZWSP, "")
    assert HOSTILE in shown
    assert "<script>alert(1)</script>" in shown  # as text, not as a tag
    assert "& &lt;i&gt; <!channel>" in shown  # entities typed by a user stay as typed
    assert "@everyone" not in markup.text and "@here" not in markup.text


async def test_discord_gets_markdown_with_every_user_text_escaped(discord, make_message):
    await channel(DISCORD_URL).send(hostile(make_message))

    [sent] = discord.messages()
    content = sent["content"]
    assert content.startswith("**") and "**Evidence**" in content
    assert r"\*bold\* \<b\>x\</b\> \[link\]\(http://evil\)" in content
    assert r"\*\*wow\*\*" in content and r"\_quiet\_" in content
    # No live markup: masked links, mentions and mass pings are all broken.
    assert not re.search(r"(?<!\\)\[[^\]]*(?<!\\)\]\(", content)
    assert not re.search(r"<@[!&]?\d+>", content)
    assert "@everyone" not in content and "@here" not in content
    assert "<https://x.com/a%29%22%3E%3Cb%3E%28http://evil%29>" in content
    assert "javascript:" not in content.replace(r"javascript:alert\(1\)", "")
    assert "allowed_mentions" not in sent


async def test_slack_gets_plain_text_with_its_control_characters_escaped(slack, make_message):
    await channel(SLACK_URL).send(hostile(make_message))

    [sent] = slack.messages()
    assert sent["mrkdwn"] is False
    [attachment] = sent["attachments"]
    assert attachment["title"] == (
        "*bold* &lt;b&gt;x&lt;/b&gt; [link](http://evil) @" + ZWSP + "everyone"
    )
    text = attachment["text"]
    assert "&lt;!channel&gt;" in text and "&lt;@" + ZWSP + "U024BE7LH&gt;" in text
    assert "<" not in text and ">" not in text  # no link, mention or command syntax survives
    assert "@here" not in text


async def test_email_gets_escaped_html_and_a_plain_subject(smtp_server, make_message):
    sink, port = smtp_server
    url = f"mailto://127.0.0.1:{port}?from=sigwatch@example.com&to=alice@example.com"

    receipt = await channel(url).send(hostile(make_message))

    assert receipt.status_code is None
    [envelope] = sink.envelopes
    assert envelope.rcpt_tos == ["alice@example.com"]
    mail: Message = email.message_from_bytes(envelope.content)
    assert str(email.header.make_header(email.header.decode_header(mail["Subject"]))) == HOSTILE
    html_part = next(part for part in mail.walk() if part.get_content_type() == "text/html")
    markup = Markup(html_part.get_payload(decode=True).decode())
    assert set(markup.tags) <= {"p", "strong", "br", "a", "ul", "li"}
    assert "script" not in markup.tags and "i" not in markup.tags
    assert markup.hrefs == [
        "https://example.com/alerts/42",
        "https://x.com/a%29%22%3E%3Cb%3E%28http://evil%29",
    ]
    assert HOSTILE in markup.text and "<script>alert(1)</script>" in markup.text


async def test_other_services_get_plain_text(start_receiver, make_message):
    # json:// is Apprise's generic JSON service: what it posts is the plain text sigwatch wrote.
    receiver = start_receiver(Receiver())
    url = f"json://127.0.0.1:{receiver.port}/notify"

    await channel(url).send(hostile(make_message))

    payload = receiver.received[0].json()
    assert payload["title"] == "*bold* <b>x</b> [link](http://evil) @" + ZWSP + "everyone"
    assert "tge · Example Protocol · confidence 87% · urgency high" in payload["message"]


async def test_update_and_test_messages_say_so(telegram, make_message):
    await channel(TELEGRAM_URL).send(make_message(kind="updated"))
    await channel(TELEGRAM_URL).send(make_message(kind="test"))

    updated, tested = (m["text"] for m in telegram.messages())
    assert updated.startswith("<b>Updated: ") and tested.startswith("<b>Test: ")


async def test_a_long_alert_is_shortened_to_fit_discord(discord, make_message):
    evidence = [
        EvidenceItem("X", f"https://x.com/s/{n}", f"author{n}", None, "excerpt " * 60)
        for n in range(12)
    ]
    message = make_message(summary="long summary " * 400, evidence=evidence)

    await channel(DISCORD_URL).send(message)

    [sent] = discord.messages()
    assert len(sent["content"]) <= 2000
    assert "more sources" in sent["content"]


# --- error answers ------------------------------------------------------------------------------


async def test_telegram_429_is_transient_with_its_retry_after(telegram, make_message):
    telegram.reply(FakeTelegram.error(429, "Too Many Requests: retry after 7", retry_after=7))

    with pytest.raises(TransientDeliveryError, match="Too Many Requests") as caught:
        await channel(TELEGRAM_URL).send(make_message())

    assert caught.value.retry_after_s == 7.0


@pytest.mark.parametrize(
    ("status", "description", "words"),
    [
        (401, "Unauthorized", "refused the credentials"),
        (403, "Forbidden: bot was blocked by the user", "refused the credentials"),
        (400, "Bad Request: chat not found", "rejected the message"),
        (404, "Not Found", "gone or the URL is wrong"),
    ],
)
async def test_telegram_refusals_are_permanent(telegram, make_message, status, description, words):
    telegram.reply(FakeTelegram.error(status, description))

    with pytest.raises(PermanentDeliveryError, match=words) as caught:
        await channel(TELEGRAM_URL).send(make_message())

    assert description in str(caught.value)
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in str(caught.value)


async def test_telegram_server_error_is_transient(telegram, make_message):
    telegram.reply(FakeTelegram.error(502, "Bad Gateway"))

    with pytest.raises(TransientDeliveryError, match="HTTP 502"):
        await channel(TELEGRAM_URL).send(make_message())


async def test_discord_429_is_transient_with_its_retry_after(discord, make_message):
    discord.reply(FakeDiscord.rate_limited(1.5))

    with pytest.raises(TransientDeliveryError, match="rate limited") as caught:
        await channel(DISCORD_URL).send(make_message())

    assert caught.value.retry_after_s == 2.0  # the header's whole seconds, the longer ask
    assert len(discord.received) == 2  # Apprise tries once more by itself, then gives up


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (FakeDiscord.error(401, "401: Unauthorized"), "refused the credentials"),
        (FakeDiscord.error(400, "Invalid Form Body", 50035), "Invalid Form Body"),
        (FakeDiscord.error(404, "Unknown Webhook", 10015), "Unknown Webhook"),
    ],
)
async def test_discord_refusals_are_permanent(discord, make_message, reply, words):
    discord.reply(reply)

    with pytest.raises(PermanentDeliveryError, match=words):
        await channel(DISCORD_URL).send(make_message())


async def test_slack_429_is_transient_with_its_retry_after(slack, make_message):
    slack.reply(FakeSlack.error(429, "rate_limited", {"Retry-After": "30"}))

    with pytest.raises(TransientDeliveryError) as caught:
        await channel(SLACK_URL).send(make_message())

    assert caught.value.retry_after_s == 30.0


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (403, "invalid_token", "refused the credentials"),
        (400, "invalid_payload", "rejected the message"),
        (404, "no_service", "gone or the URL is wrong"),
        (410, "channel_is_archived", "gone or the URL is wrong"),
    ],
)
async def test_slack_refusals_are_permanent(slack, make_message, status, code, words):
    slack.reply(FakeSlack.error(status, code))

    with pytest.raises(PermanentDeliveryError, match=words) as caught:
        await channel(SLACK_URL).send(make_message())

    assert code in str(caught.value)


@pytest.mark.parametrize(
    ("error", "expected"),
    [("invalid_auth", PermanentDeliveryError), ("ratelimited", TransientDeliveryError)],
)
async def test_slack_web_api_errors_inside_a_200_are_judged_by_their_code(
    start_receiver, monkeypatch, make_message, error, expected
):
    # Bot tokens use the Web API (chat.postMessage), which answers 200 {"ok": false, "error"}.
    api = start_receiver(FakeSlack())
    api.reply(json_reply(200, {"ok": False, "error": error}))
    monkeypatch.setattr(NotifySlack, "api_url", api.url("/api/{}"))

    with pytest.raises(expected, match=error):
        await channel("slack://xoxb-1234-1234-4ddbc191d40ee098cbaae6f3523ada2d/#general").send(
            make_message()
        )

    assert api.received[0].path == "/api/chat.postMessage"


async def test_slack_web_api_rate_limit_inside_a_200_keeps_its_retry_after(
    start_receiver, monkeypatch, make_message
):
    api = start_receiver(FakeSlack())
    api.reply(json_reply(200, {"ok": False, "error": "ratelimited"}, {"Retry-After": "45"}))
    monkeypatch.setattr(NotifySlack, "api_url", api.url("/api/{}"))

    with pytest.raises(TransientDeliveryError, match="retrying after 45s as asked") as caught:
        await channel("slack://xoxb-1234-1234-4ddbc191d40ee098cbaae6f3523ada2d/#general").send(
            make_message()
        )

    assert caught.value.retry_after_s == 45.0


async def test_a_slow_service_is_a_transient_timeout(telegram, make_message):
    telegram.reply(Reply(200, b"{}", delay_s=3))

    started = time.monotonic()
    with pytest.raises(TransientDeliveryError):
        await channel(TELEGRAM_URL, timeout_s=0.5).send(make_message())

    assert time.monotonic() - started < 2


async def test_an_unreachable_service_is_transient(monkeypatch, make_message):
    monkeypatch.setattr(NotifyTelegram, "notify_url", f"http://127.0.0.1:{free_port()}/bot")

    with pytest.raises(TransientDeliveryError, match="could not be reached"):
        await channel(TELEGRAM_URL).send(make_message())


async def test_an_unreachable_mail_server_is_transient(make_message):
    url = f"mailto://127.0.0.1:{free_port()}?from=sigwatch@example.com&to=alice@example.com"

    with pytest.raises(TransientDeliveryError, match="mailto URL"):
        await channel(url).send(make_message())


async def test_concurrent_sends_judge_their_own_answers(telegram, discord, make_message):
    telegram.reply(FakeTelegram.error(401, "Unauthorized"))

    refused, delivered = await asyncio.gather(
        channel(TELEGRAM_URL).send(make_message()),
        channel(DISCORD_URL).send(make_message()),
        return_exceptions=True,
    )

    assert isinstance(refused, PermanentDeliveryError)
    assert delivered.status_code == 200


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["", "not a url", "nosuchservice://token", "tgram://"])
def test_urls_apprise_cannot_use_are_refused(url):
    with pytest.raises(ValidationError, match="not an Apprise URL"):
        AppriseOptions(url=url)


@pytest.mark.parametrize(
    "url",
    [
        "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js?template=/etc/passwd",
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ?template=http://169.254.169.254/",
    ],
)
def test_parameters_that_read_files_or_urls_are_refused(url):
    with pytest.raises(ValidationError, match="reads a file or URL"):
        AppriseOptions(url=url)


def test_timeout_is_bounded():
    with pytest.raises(ValidationError):
        AppriseOptions(url=TELEGRAM_URL, timeout_s=0)
    with pytest.raises(ValidationError):
        AppriseOptions(url=TELEGRAM_URL, timeout_s=3600)
