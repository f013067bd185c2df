"""The channel registry: config validation, secrets sealed at rest and masked, and the contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from chatfakes import WebhookReceiver

from sigwatch.delivery.channels.registry import (
    CHANNEL_KINDS,
    build_channel,
    channel_secret_fields,
    mask_channel_config,
    open_channel_config,
    seal_channel_config,
    validate_channel_config,
)
from sigwatch.errors import ConfigError, InvalidOptions

KEY = "test-secret-key-that-is-long-enough-0123456789"
DOCS = Path(__file__).parents[2] / "docs" / "channels.md"
VALID = {
    "webhook": {"url": "https://hooks.example.com/in/abc123", "secret": None},
    "apprise": {"url": "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/12345"},
}


def valid_config(kind: str) -> dict:
    return {name: value for name, value in VALID[kind].items() if value is not None}


@pytest.mark.parametrize("kind", sorted(CHANNEL_KINDS))
def test_every_kind_is_documented(kind):
    assert f"## `{kind}`" in DOCS.read_text(), f"channel kind {kind} is missing from channels.md"


@pytest.mark.parametrize("kind", sorted(CHANNEL_KINDS))
def test_every_kind_refuses_unknown_fields_by_name(kind):
    with pytest.raises(InvalidOptions, match=r"colour: Extra inputs are not permitted"):
        validate_channel_config(kind, {**valid_config(kind), "colour": "red"})


@pytest.mark.parametrize("kind", sorted(CHANNEL_KINDS))
def test_every_kind_keeps_its_secrets_out_of_repr(kind):
    options = CHANNEL_KINDS[kind].Options.model_validate(valid_config(kind))

    for name in channel_secret_fields(kind):
        assert str(validate_channel_config(kind, valid_config(kind))[name]) not in repr(options)


@pytest.mark.parametrize("kind", sorted(CHANNEL_KINDS))
def test_sealed_config_opens_to_the_same_config(kind):
    config = validate_channel_config(kind, valid_config(kind))

    sealed = seal_channel_config(kind, config, KEY)

    for name in channel_secret_fields(kind):
        assert sealed[name] != config[name]
        assert config[name] not in sealed[name]
    assert open_channel_config(kind, sealed, KEY) == config


def test_secret_fields_are_the_ones_typed_secret():
    assert channel_secret_fields("webhook") == ("url", "secret")
    assert channel_secret_fields("apprise") == ("url",)


def test_webhook_secret_is_generated_when_omitted():
    config = validate_channel_config("webhook", {"url": "https://hooks.example.com/in"})

    assert config["secret"].startswith("whsec_")


def test_validated_config_keeps_secrets_in_clear_for_sealing():
    config = validate_channel_config("apprise", valid_config("apprise"))

    assert config == {"url": VALID["apprise"]["url"], "timeout_s": 30.0}


def test_errors_name_each_field_but_never_echo_a_value():
    with pytest.raises(InvalidOptions) as caught:
        validate_channel_config(
            "webhook", {"url": "ftp://user:hunter2hunter2@example.com", "secret": "whsec_c2hvcnQ="}
        )

    message = str(caught.value)
    assert message.startswith("config.url: invalid webhook channel options: ")
    assert [problem.location for problem in caught.value.problems] == [("url",), ("secret",)]
    assert "url: Value error, must be an absolute http:// or https:// URL" in message
    assert "secret: Value error, must encode 24 to 64 random bytes, not 5" in message
    assert "hunter2" not in message and "c2hvcnQ" not in message


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown channel kind 'pigeon'; known kinds: apprise"):
        validate_channel_config("pigeon", {})


def test_open_with_another_key_says_what_to_do():
    sealed = seal_channel_config(
        "apprise", validate_channel_config("apprise", VALID["apprise"]), KEY
    )

    with pytest.raises(ConfigError, match="SIGWATCH_SECRET_KEY"):
        open_channel_config("apprise", sealed, "another-key")


def test_masked_config_shows_no_secret():
    config = validate_channel_config("webhook", valid_config("webhook"))

    masked = mask_channel_config("webhook", config)

    assert masked["url"] == "https://****"
    assert masked["secret"].startswith("****") and len(masked["secret"]) == 8


async def test_a_stored_channel_sends_the_test_message(start_receiver, outbound, make_message):
    # The whole path of a channel: validated, sealed, stored, opened, built, sent.
    secret = validate_channel_config("webhook", {"url": "https://example.com"})["secret"]
    receiver = start_receiver(WebhookReceiver(secret))
    config = validate_channel_config("webhook", {"url": receiver.url("/in"), "secret": secret})
    stored = seal_channel_config("webhook", config, KEY)

    sent = build_channel("webhook", open_channel_config("webhook", stored, KEY), outbound)
    receipt = await sent.send(make_message(kind="test"))

    assert sent.kind == "webhook" and receipt.status_code == 204
    assert receiver.signature_is_valid(receiver.received[0])
