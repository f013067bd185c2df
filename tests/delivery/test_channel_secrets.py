"""Channel secrets at rest: Fernet under a key derived from the app's secret key."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet, InvalidToken

from sigwatch.errors import ConfigError
from sigwatch.secrets import decrypt_secret, encrypt_secret, mask_secret

KEY = "test-secret-key-that-is-long-enough-0123456789"


def test_round_trip():
    token = encrypt_secret(KEY, "tgram://123456:ABCDEF/987")

    assert decrypt_secret(KEY, token) == "tgram://123456:ABCDEF/987"


def test_token_does_not_contain_the_plaintext_and_differs_each_time():
    first = encrypt_secret(KEY, "whsec_c2VjcmV0")
    second = encrypt_secret(KEY, "whsec_c2VjcmV0")

    assert "c2VjcmV0" not in first
    assert first != second  # a fresh IV per encryption
    assert first.isascii()


def test_unicode_survives():
    assert decrypt_secret(KEY, encrypt_secret(KEY, "mailtos://josé:pässwörd@example.com")) == (
        "mailtos://josé:pässwörd@example.com"
    )


def test_wrong_key_says_the_secret_key_may_have_changed():
    token = encrypt_secret(KEY, "secret")

    with pytest.raises(
        ConfigError, match=r"cannot decrypt a stored secret: was SIGWATCH_SECRET_KEY"
    ):
        decrypt_secret(KEY + "-rotated", token)


def test_tampered_or_garbage_token_is_refused_the_same_way():
    token = encrypt_secret(KEY, "secret")
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]

    for bad in (tampered, "not a token", "", "ünïcode"):
        with pytest.raises(ConfigError, match="cannot decrypt a stored secret"):
            decrypt_secret(KEY, bad)


def test_empty_secret_key_is_refused():
    with pytest.raises(ConfigError, match="SIGWATCH_SECRET_KEY"):
        encrypt_secret("", "secret")


def test_derived_key_is_not_the_secret_key_itself():
    # A Fernet key made directly from the secret key's bytes must not open the tokens:
    # the HKDF label keeps channel encryption apart from other uses of the secret key.
    naive = Fernet(base64.urlsafe_b64encode(KEY.encode()[:32]))
    with pytest.raises(InvalidToken):
        naive.decrypt(encrypt_secret(KEY, "secret").encode())


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("tgram://123456:ABCDEFGHIJ/987", "tgram://****"),
        ("https://hooks.example.com/T000/B000/XXXX", "https://****"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "****LaSw"),
        ("short", "****"),
        ("://nothing-before", "****"),
        ("", ""),
    ],
)
def test_mask_secret(value, masked):
    assert mask_secret(value) == masked
