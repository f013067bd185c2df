"""Standard Webhooks delivery to a real receiver on 127.0.0.1 that checks signatures itself."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from chatfakes import Reply, WebhookReceiver, free_port

from sigwatch.delivery.channels.webhook import (
    WebhookChannel,
    WebhookOptions,
    generate_webhook_secret,
    secret_bytes,
    sign_webhook,
    verify_webhook,
)
from sigwatch.errors import PermanentDeliveryError, TransientDeliveryError
from sigwatch.net.client import OutboundClient

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DOCS = Path(__file__).parents[2] / "docs" / "channels.md"


@pytest.fixture
def receiver(start_receiver) -> WebhookReceiver:
    return start_receiver(WebhookReceiver(SECRET))


def channel_for(url: str, client: OutboundClient, **kwargs) -> WebhookChannel:
    return WebhookChannel(WebhookOptions(url=url, secret=SECRET), client, **kwargs)


async def test_delivery_is_signed_so_the_receiver_verifies_it(receiver, outbound, make_message):
    message = make_message()

    receipt = await channel_for(receiver.url("/hook"), outbound).send(message)

    assert receipt.status_code == 204
    [request] = receiver.received
    assert receiver.signature_is_valid(request)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == message.idempotency_key
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 5
    assert request.body == message.to_json().encode()
    assert json.loads(request.body)["data"]["alert_id"] == 42


async def test_repeated_sends_carry_the_same_webhook_id(receiver, outbound, make_message):
    channel = channel_for(receiver.url("/hook"), outbound)
    message = make_message()

    await channel.send(message)
    await channel.send(message)

    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "alert-42-channel-7"
    assert all(receiver.signature_is_valid(request) for request in receiver.received)


async def test_signature_covers_the_timestamp(receiver, outbound, make_message):
    clock = iter([1_700_000_000.0, 1_700_000_060.0])
    channel = channel_for(receiver.url("/hook"), outbound, clock=lambda: next(clock))

    await channel.send(make_message())
    await channel.send(make_message())

    first, second = receiver.received
    assert first.headers["webhook-timestamp"] == "1700000000"
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]


async def test_a_receiver_with_another_secret_rejects_the_signature(
    start_receiver, outbound, make_message
):
    other = start_receiver(WebhookReceiver(generate_webhook_secret()))

    await channel_for(other.url("/hook"), outbound).send(make_message())

    assert not other.signature_is_valid(other.received[0])


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_transient(receiver, outbound, make_message, status):
    receiver.reply(Reply(status, b"upstream trouble"))

    with pytest.raises(TransientDeliveryError, match=f"HTTP {status}.*upstream trouble"):
        await channel_for(receiver.url("/hook"), outbound).send(make_message())


async def test_429_is_transient_with_the_retry_after_asked(receiver, outbound, make_message):
    receiver.reply(Reply(429, b"slow down", {"Retry-After": "120"}))

    with pytest.raises(TransientDeliveryError) as caught:
        await channel_for(receiver.url("/hook"), outbound).send(make_message())

    assert caught.value.retry_after_s == 120.0


async def test_503_with_an_http_date_retry_after_is_honoured(receiver, outbound, make_message):
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 90))
    receiver.reply(Reply(503, b"", {"Retry-After": later}))

    with pytest.raises(TransientDeliveryError) as caught:
        await channel_for(receiver.url("/hook"), outbound).send(make_message())

    assert 80 <= caught.value.retry_after_s <= 91


async def test_a_slow_receiver_is_a_transient_timeout(receiver, make_message):
    receiver.reply(Reply(200, delay_s=3))
    async with OutboundClient(
        timeout_s=0.3,
        max_response_bytes=10_000,
        max_redirects=0,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    ) as client:
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError, match=r"timed out after 0\.3s"):
            await channel_for(receiver.url("/hook"), client).send(make_message())

    assert time.monotonic() - started < 2


async def test_a_receiver_that_is_down_is_transient(outbound, make_message):
    url = f"http://127.0.0.1:{free_port()}/hook"

    with pytest.raises(TransientDeliveryError, match="could not connect"):
        await channel_for(url, outbound).send(make_message())


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (400, "rejected the message"),
        (401, "refused the credentials"),
        (403, "refused the credentials"),
        (404, "gone or the URL is wrong"),
        (410, "gone or the URL is wrong"),
        (422, "rejected the message"),
    ],
)
async def test_client_errors_are_permanent(receiver, outbound, make_message, status, words):
    receiver.reply(Reply(status, b'{"error": "nope"}'))

    with pytest.raises(PermanentDeliveryError, match=words) as caught:
        await channel_for(receiver.url("/hook"), outbound).send(make_message())

    assert f"HTTP {status}" in str(caught.value) and "nope" in str(caught.value)


async def test_a_redirect_is_permanent_and_not_followed(receiver, outbound, make_message):
    receiver.reply(Reply(308, b"", {"Location": receiver.url("/new-hook")}))

    with pytest.raises(PermanentDeliveryError, match="configure the final URL"):
        await channel_for(receiver.url("/hook"), outbound).send(make_message())

    assert [request.path for request in receiver.received] == ["/hook"]


async def test_a_private_address_is_refused_without_connecting(receiver, make_message):
    async with OutboundClient(
        timeout_s=2, max_response_bytes=10_000, max_redirects=0, user_agent="t"
    ) as guarded:
        with pytest.raises(PermanentDeliveryError, match="SIGWATCH_ALLOW_PRIVATE_URLS"):
            await channel_for(receiver.url("/hook"), guarded).send(make_message())

    assert receiver.received == []


@pytest.mark.parametrize("answer", [Reply(500), Reply(404), Reply(200, delay_s=3)])
async def test_errors_name_the_origin_but_never_the_path_that_may_hold_a_token(
    receiver, make_message, answer
):
    receiver.reply(answer)
    url = receiver.url("/hooks/123/secretpathtoken")
    async with OutboundClient(
        timeout_s=0.3,
        max_response_bytes=10_000,
        max_redirects=0,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    ) as client:
        with pytest.raises((TransientDeliveryError, PermanentDeliveryError)) as caught:
            await channel_for(url, client).send(make_message())

    assert f"webhook http://127.0.0.1:{receiver.port}" in str(caught.value)
    assert "secretpathtoken" not in str(caught.value)


# --- the helpers offered to users --------------------------------------------------------------


def test_sign_webhook_matches_the_specification_test_vector():
    # The Standard Webhooks specification's published example.
    assert (
        sign_webhook(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def vector_headers(**overrides: str) -> dict[str, str]:
    headers = {
        "Webhook-Id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "Webhook-Timestamp": "1614265330",
        "Webhook-Signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    headers.update(overrides)
    return headers


def test_verify_webhook_accepts_the_test_vector_within_tolerance():
    body = b'{"test": 2432232314}'

    assert verify_webhook(SECRET, vector_headers(), body, now=1614265330 + 60)


def test_verify_webhook_accepts_any_of_several_signatures():
    headers = vector_headers(
        **{"Webhook-Signature": "v1,bm90IGl0 v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    )

    assert verify_webhook(SECRET, headers, b'{"test": 2432232314}', now=1614265330)


@pytest.mark.parametrize(
    ("headers", "body", "now"),
    [
        (vector_headers(), b'{"test": 2432232315}', 1614265330),  # body changed
        (vector_headers(), b'{"test": 2432232314}', 1614265330 + 301),  # too old
        (vector_headers(), b'{"test": 2432232314}', 1614265330 - 301),  # from the future
        (vector_headers(**{"Webhook-Id": "msg_other"}), b'{"test": 2432232314}', 1614265330),
        (vector_headers(**{"Webhook-Timestamp": "soon"}), b'{"test": 2432232314}', 1614265330),
        ({"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek"}, b'{"test": 2432232314}', 1614265330),
    ],
)
def test_verify_webhook_refuses_tampering_replay_and_missing_headers(headers, body, now):
    assert not verify_webhook(SECRET, headers, body, now=now)


def test_generated_secrets_are_random_whsec_values_the_options_accept():
    first, second = generate_webhook_secret(), generate_webhook_secret()

    assert first.startswith("whsec_") and first != second
    assert len(secret_bytes(first)) == 32
    assert WebhookOptions(url="https://example.com/hook", secret=first).secret.get_secret_value()


def docs_recipe():
    """The ``verify`` function of the verification recipe in docs/channels.md."""
    section = DOCS.read_text().split("### Verifying a delivery", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(code, namespace)
    return namespace["verify"]


async def test_the_docs_recipe_and_the_helper_accept_a_real_delivery_and_only_it(
    receiver, outbound, make_message
):
    await channel_for(receiver.url("/hook"), outbound).send(make_message())
    [request] = receiver.received
    recipe = docs_recipe()

    assert recipe(SECRET, request.headers, request.body)
    assert verify_webhook(SECRET, request.headers, request.body)
    assert not recipe(SECRET, request.headers, request.body + b" ")
    assert not verify_webhook(SECRET, request.headers, request.body + b" ")
    other = generate_webhook_secret()
    assert not recipe(other, request.headers, request.body)
    assert not verify_webhook(other, request.headers, request.body)
