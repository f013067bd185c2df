"""The kind registry finds a secret wherever the options model puts it, and never shows it."""

from __future__ import annotations

import json
from typing import Annotated, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from sigwatch.errors import ConfigError, InvalidOptions
from sigwatch.kinds import KindRegistry, options_table

KEY = "kinds-test-secret-key-that-is-long-enough-0123456789"


class Login(BaseModel):
    user: str
    password: SecretStr


class NestedOptions(BaseModel):
    """Options with secrets at every depth a kind might use."""

    model_config = ConfigDict(extra="forbid")

    address: str
    token: SecretStr | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    keys: list[Annotated[SecretStr, Field(min_length=8)]] = Field(default_factory=list)
    login: Login | None = None
    retries: int = 3

    @field_validator("address")
    @classmethod
    def _check(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError(f"must be https, not {value}")
        return value


class NestedKind:
    """A kind made for this test: nothing but its options."""

    kind: ClassVar[str] = "nested"
    Options: ClassVar[type[BaseModel]] = NestedOptions


REGISTRY: KindRegistry[NestedKind] = KindRegistry("source", {"nested": NestedKind})
CONFIG = {
    "address": "https://example.com/x",
    "token": "tok-aaaaaaaaaaaaaaaaaaaa",
    "headers": {"X-Api-Key": "hdr-bbbbbbbbbbbbbbbbbbbb"},
    "keys": ["key-cccccccccccccccccccc"],
    "login": {"user": "alice", "password": "pw-dddddddddddddddddddd"},
}
SECRETS = ("tok-a", "hdr-b", "key-c", "pw-d")


def test_every_secret_is_sealed_at_any_depth_and_opens_back():
    clear = REGISTRY.clear_config("nested", CONFIG)

    sealed = REGISTRY.seal("nested", clear, KEY)

    stored = json.dumps(sealed)
    assert not any(secret in stored for secret in SECRETS)
    assert sealed["address"] == CONFIG["address"] and sealed["login"]["user"] == "alice"
    assert REGISTRY.open("nested", sealed, KEY) == clear
    assert REGISTRY.secret_fields("nested") == ("token", "headers", "keys", "login")


def test_shown_config_masks_every_secret_even_with_another_key():
    sealed = REGISTRY.seal("nested", REGISTRY.clear_config("nested", CONFIG), KEY)

    for key in (KEY, "a-different-key-0123456789abcdef0123456789"):
        shown = REGISTRY.shown("nested", sealed, key)
        assert not any(secret in json.dumps(shown) for secret in SECRETS)
        assert shown["address"] == CONFIG["address"] and shown["retries"] == 3


def test_a_kind_no_longer_registered_shows_no_text_at_all():
    shown = KindRegistry("source", {}).shown("gone", {"url": "x", "n": 1}, KEY)

    assert shown == {"url": "****", "n": 1}


def test_a_refusal_names_the_option_and_masks_a_secret_it_would_quote():
    config = {**CONFIG, "address": "tok-aaaaaaaaaaaaaaaaaaaa", "keys": ["short"]}

    with pytest.raises(InvalidOptions) as caught:
        REGISTRY.validate("nested", config)

    locations = [problem.location for problem in caught.value.problems]
    assert locations == [("address",), ("keys", 0)]
    assert "tok-a" not in str(caught.value) and "short" not in str(caught.value)


def test_a_blank_secret_leaves_the_rest_of_a_refusal_readable():
    config = {**CONFIG, "address": "ftp://news.example", "headers": {"X-Key": " "}}

    with pytest.raises(InvalidOptions) as caught:
        REGISTRY.validate("nested", config)

    assert "must be https, not ftp://news.example" in str(caught.value)


def test_keeping_stored_secrets_takes_those_left_out_or_sent_back_masked():
    clear = REGISTRY.clear_config("nested", CONFIG)
    sealed = REGISTRY.seal("nested", clear, KEY)
    shown = REGISTRY.shown("nested", sealed, KEY)

    given = {"address": "https://example.com/y", "headers": shown["headers"], "keys": []}
    kept = REGISTRY.keep_stored_secrets("nested", given, sealed, KEY)

    assert kept["address"] == "https://example.com/y" and kept["keys"] == []
    assert kept["token"] == CONFIG["token"] and kept["headers"] == CONFIG["headers"]
    assert kept["login"]["password"] == CONFIG["login"]["password"]


def test_secrets_sealed_under_another_key_cannot_be_kept_and_are_named():
    sealed = REGISTRY.seal("nested", REGISTRY.clear_config("nested", CONFIG), KEY)

    with pytest.raises(InvalidOptions) as caught:
        REGISTRY.keep_stored_secrets(
            "nested", {"address": "https://example.com/y"}, sealed, KEY + "-rotated"
        )

    named = {problem.location for problem in caught.value.problems}
    assert {("token",), ("headers",), ("login",)} <= named
    assert "enter it again" in str(caught.value)
    assert not any(secret in str(caught.value) for secret in SECRETS)


def test_an_unknown_kind_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown source kind 'pigeon'; known kinds: nested"):
        REGISTRY.validate("pigeon", {})


def test_the_options_table_marks_secrets_and_shows_defaults():
    table = options_table(NestedOptions)

    assert "| `token` | string, secret | no |  |" in table
    assert "| `retries` | integer | no | `3` |" in table
    assert "| `address` | string | yes |" in table
