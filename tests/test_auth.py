"""Credentials: password hashes, API keys and tokens, as the API and the CLI use them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from sigwatch import auth
from sigwatch.errors import AuthError

SECRET = "s" * 48


def test_password_hash_verifies_the_password_and_refuses_others():
    hashed = auth.hash_password("hunter2hunter2")
    assert hashed.startswith("$argon2id$") and "hunter2" not in hashed
    assert auth.verify_password("hunter2hunter2", hashed) == (True, None)
    assert auth.verify_password("hunter3hunter3", hashed) == (False, None)


def test_verifying_against_no_user_or_an_unreadable_hash_fails_without_raising():
    assert auth.verify_password("anything", None) == (False, None)
    assert auth.verify_password("anything", "not-a-hash") == (False, None)


def test_api_key_has_prefix_display_part_and_only_its_sha256_is_kept():
    new = auth.generate_api_key()
    assert new.key.startswith("sw_") and len(new.key) > 40
    assert new.prefix == new.key[: len(new.prefix)] and 8 <= len(new.prefix) <= 12
    assert new.key_hash == hashlib.sha256(new.key.encode()).hexdigest()
    assert auth.hash_api_key(new.key) == new.key_hash
    assert auth.generate_api_key().key != new.key


def test_looks_like_api_key_tells_keys_from_tokens():
    assert auth.looks_like_api_key(auth.generate_api_key().key)
    assert not auth.looks_like_api_key("eyJhbGciOiJIUzI1NiJ9.e30.x")
    assert not auth.looks_like_api_key("sw_" + "x" * 500)


def test_token_pair_carries_user_role_type_and_lifetimes():
    now = datetime.now(UTC).replace(microsecond=0)
    pair = auth.issue_token_pair(
        SECRET, user_id=7, role="admin", access_ttl_s=900, refresh_ttl_s=86400, now=now
    )
    assert pair.expires_in == 900
    access = auth.decode_token(SECRET, pair.access_token, expected_type="access")
    assert (access.user_id, access.role, access.type) == (7, "admin", "access")
    assert access.issued_at == now and access.expires_at == now + timedelta(seconds=900)
    refresh = auth.decode_token(SECRET, pair.refresh_token, expected_type="refresh")
    assert refresh.expires_at == now + timedelta(days=1)
    assert refresh.jti != access.jti
    claims = jwt.decode(pair.access_token, SECRET, algorithms=["HS256"])
    assert set(claims) == {"sub", "role", "type", "exp", "iat", "jti", "ver"}
    assert claims["sub"] == "7"


def test_expired_access_token_is_refused_with_how_to_renew():
    token = auth.issue_token(
        SECRET,
        user_id=1,
        role="user",
        token_type="access",
        ttl_s=60,
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    with pytest.raises(AuthError, match="expired.*auth/refresh"):
        auth.decode_token(SECRET, token, expected_type="access")


def test_refresh_token_is_not_accepted_as_access_token():
    pair = auth.issue_token_pair(SECRET, user_id=1, role="user", access_ttl_s=60, refresh_ttl_s=600)
    with pytest.raises(AuthError, match="refresh token cannot be used here"):
        auth.decode_token(SECRET, pair.refresh_token, expected_type="access")


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        jwt.encode({"sub": "1", "type": "access"}, SECRET, algorithm="HS256"),  # no exp etc.
        jwt.encode(
            {"sub": "1", "role": "user", "type": "access", "exp": 2**40, "iat": 0, "jti": "x"},
            "another-secret-that-is-long-enough-0123456789",
            algorithm="HS256",
        ),
        jwt.encode(
            {"sub": "x", "role": "user", "type": "access", "exp": 2**40, "iat": 0, "jti": "x"},
            SECRET,
            algorithm="HS256",
        ),
    ],
    ids=["garbage", "missing-claims", "wrong-key", "non-numeric-sub"],
)
def test_invalid_tokens_are_refused_with_auth_error(token):
    with pytest.raises(AuthError, match="sign in"):
        auth.decode_token(SECRET, token, expected_type="access")
