"""Encryption at rest of the secrets in source and channel options.

Source credentials (an RSS feed's Authorization header), webhook URLs and signing keys, and
Apprise URLs with tokens are all sealed here, by :mod:`sigwatch.kinds`. Values are Fernet tokens
(AES-128-CBC with HMAC-SHA256) under a key derived from the app's secret key with HKDF-SHA256.
The fixed ``info`` label keeps this key apart from any other use of the same secret key (token
signing uses it directly), so one never doubles as the other. The label still says "channel"
because channels used it first: changing it would make every secret already stored unreadable.
"""

from __future__ import annotations

import base64
import re

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sigwatch.errors import ConfigError

_HKDF_INFO = b"sigwatch channel secrets v1"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
MASK = "****"


def _fernet(secret_key: str) -> Fernet:
    if not secret_key:
        raise ConfigError("the secret key is empty: set SIGWATCH_SECRET_KEY")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_secret(secret_key: str, plaintext: str) -> str:
    """Encrypt ``plaintext`` under ``secret_key``; the token is ASCII and safe to store."""
    return _fernet(secret_key).encrypt(plaintext.encode()).decode("ascii")


def decrypt_secret(secret_key: str, token: str) -> str:
    """Decrypt a token made by :func:`encrypt_secret`, or raise ConfigError saying why not."""
    try:
        return _fernet(secret_key).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise ConfigError(
            "cannot decrypt a stored secret: was SIGWATCH_SECRET_KEY changed? Restore the old "
            "key, or enter the secrets of this source or channel again"
        ) from None


def mask_secret(value: str) -> str:
    """``value`` made safe to show: a URL keeps only its scheme, a key its last four characters."""
    if not value:
        return ""
    scheme, separator, _ = value.partition("://")
    if separator:
        return f"{scheme}://{MASK}" if _SCHEME.fullmatch(scheme) else MASK
    if len(value) >= 16:
        return f"{MASK}{value[-4:]}"
    return MASK
