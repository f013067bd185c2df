"""Credentials: password hashes, API keys and signed tokens, shared by the API and the CLI.

Nothing here knows HTTP or the database: callers pass the signing key and lifetimes in, and
failures raise :class:`~sigwatch.errors.AuthError` with a message a client can act on.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
from pwdlib import PasswordHash
from pwdlib.exceptions import PwdlibError

from sigwatch.errors import AuthError

TokenType = Literal["access", "refresh"]

ALGORITHM = "HS256"
API_KEY_PREFIX = "sw_"
#: Characters of a key kept in clear for listings: ``sw_`` and eight more, never enough to guess.
API_KEY_DISPLAY_LENGTH = 11
#: Longest header value looked up as a key; anything longer cannot be one we issued.
API_KEY_MAX_LENGTH = 128
#: Clock difference tolerated between the machines that issue and check tokens.
LEEWAY_S = 10

_hasher = PasswordHash.recommended()


@functools.cache
def _dummy_hash() -> str:
    # Verified against when the user does not exist, so a wrong username costs as long as a wrong
    # password and response times do not reveal which usernames exist. Made on first use: hashing
    # at import would slow every CLI command.
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """Hash a password with argon2id for storage."""
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """Check a password; also return a fresh hash when the stored one uses outdated parameters.

    A ``password_hash`` of None (no such user) is checked against a dummy hash and fails.
    """
    try:
        if password_hash is None:
            _hasher.verify(password, _dummy_hash())
            return False, None
        return _hasher.verify_and_update(password, password_hash)
    except PwdlibError:
        # An unreadable stored hash is a failed login, not a crash.
        return False, None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A freshly generated API key: ``key`` is shown once, only ``key_hash`` is stored."""

    key: str
    prefix: str
    key_hash: str


def generate_api_key() -> NewApiKey:
    """Make a random API key ``sw_…`` with its stored hash and display prefix."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return NewApiKey(key=key, prefix=key[:API_KEY_DISPLAY_LENGTH], key_hash=hash_api_key(key))


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest under which an API key is stored and looked up."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_api_key(value: str) -> bool:
    """True when ``value`` has the shape of a key this module issues (not whether it exists)."""
    return value.startswith(API_KEY_PREFIX) and len(value) <= API_KEY_MAX_LENGTH


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The verified content of a token."""

    user_id: int
    role: str
    type: TokenType
    issued_at: datetime
    expires_at: datetime
    jti: str
    #: The user's token version when signed; a password change raises it and retires the token.
    token_version: int = 0


@dataclass(frozen=True, slots=True)
class TokenPair:
    """An access token, the refresh token that renews it, and the access lifetime in seconds."""

    access_token: str
    refresh_token: str
    expires_in: int


def issue_token(
    secret_key: str,
    *,
    user_id: int,
    role: str,
    token_type: TokenType,
    ttl_s: int,
    token_version: int = 0,
    now: datetime | None = None,
) -> str:
    """Sign a token for ``user_id`` that expires ``ttl_s`` seconds after ``now``."""
    issued = (now or datetime.now(UTC)).astimezone(UTC)
    claims = {
        "sub": str(user_id),
        "role": role,
        "type": token_type,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=ttl_s)).timestamp()),
        "jti": uuid.uuid4().hex,
        # A counter rather than a time: a token signed in the same second as a password change
        # is still told apart from the ones before it.
        "ver": token_version,
    }
    return jwt.encode(claims, secret_key, algorithm=ALGORITHM)


def issue_token_pair(
    secret_key: str,
    *,
    user_id: int,
    role: str,
    access_ttl_s: int,
    refresh_ttl_s: int,
    token_version: int = 0,
    now: datetime | None = None,
) -> TokenPair:
    """Sign an access token and a refresh token for the same user."""
    access = issue_token(
        secret_key,
        user_id=user_id,
        role=role,
        token_type="access",
        ttl_s=access_ttl_s,
        token_version=token_version,
        now=now,
    )
    refresh = issue_token(
        secret_key,
        user_id=user_id,
        role=role,
        token_type="refresh",
        ttl_s=refresh_ttl_s,
        token_version=token_version,
        now=now,
    )
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=access_ttl_s)


def decode_token(secret_key: str, token: str, *, expected_type: TokenType) -> TokenClaims:
    """Verify signature, expiry and type of a token, or raise AuthError saying what to do."""
    try:
        claims = jwt.decode(
            token,
            secret_key,
            algorithms=[ALGORITHM],
            leeway=LEEWAY_S,
            options={"require": ["sub", "exp", "iat", "jti", "type", "role"]},
        )
    except jwt.ExpiredSignatureError:
        hint = (
            "renew it at POST /api/v1/auth/refresh"
            if expected_type == "access"
            else "sign in again at POST /api/v1/auth/token"
        )
        raise AuthError(f"the {expected_type} token has expired: {hint}") from None
    except jwt.InvalidTokenError:
        raise AuthError(
            "the token is not valid: sign in at POST /api/v1/auth/token for a new one"
        ) from None
    if claims.get("type") != expected_type:
        raise AuthError(
            f"a {claims.get('type')} token cannot be used here: send the {expected_type} token"
        )
    try:
        user_id = int(claims["sub"])
        issued_at = datetime.fromtimestamp(claims["iat"], UTC)
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        # Tokens signed before versions existed carry none: they belong to version 0.
        token_version = int(claims.get("ver", 0))
    except (TypeError, ValueError, OverflowError, OSError):
        raise AuthError(
            "the token is not valid: sign in at POST /api/v1/auth/token for a new one"
        ) from None
    return TokenClaims(
        user_id=user_id,
        role=str(claims["role"]),
        type=expected_type,
        issued_at=issued_at,
        expires_at=expires_at,
        jti=str(claims["jti"]),
        token_version=token_version,
    )
