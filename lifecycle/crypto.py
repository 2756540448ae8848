"""Secrets at rest and keyed hashes.

Secrets are encrypted with Fernet under the first of LIFECYCLE_ENCRYPTION_KEYS and read
with any of them, so a new key goes in front and `manage.py rotate_secrets` re-encrypts.
Content hashes are HMAC-SHA256 under LIFECYCLE_HASH_KEY: they detect any change,
secrets included, and reveal nothing about a secret.
"""

import hashlib
import hmac
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

__all__ = ["InvalidToken", "canonical_json", "decrypt", "encrypt", "keyed_hash", "rotate"]


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return _current().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    """The same secret, encrypted under the newest key."""
    return _current().rotate(token.encode()).decode()


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def keyed_hash(value) -> str:
    """HMAC-SHA256 of the canonical JSON of `value`."""
    key = settings.HASH_KEY.encode()
    return hmac.new(key, canonical_json(value).encode(), hashlib.sha256).hexdigest()
