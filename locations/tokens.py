"""Secrets that callers present (portal client keys, OCPI tokens): stored as digests, compared in constant time."""

import hashlib
import hmac
import secrets


def token_new() -> str:
    """256 random bits, URL-safe. Never starting with '-': tokens are pasted into command lines
    (`manage.py ocpi_register URL TOKEN_A`), where such a word reads as an option."""
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, digest: str) -> bool:
    return hmac.compare_digest(token_digest(token), digest)


def _fernet():
    # Imported here so that processes that never touch an encrypted secret do not pay for it.
    import base64

    from cryptography.fernet import Fernet, MultiFernet
    from django.conf import settings

    keys = settings.EVHUB_ENCRYPTION_KEYS or [settings.SECRET_KEY]
    # Any text is accepted as a key; Fernet wants 32 url-safe base64 bytes, so each key is hashed to that.
    return MultiFernet([Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())) for key in keys])


def secret_encrypt(secret: str) -> str:
    """Encrypt a secret we must send later (a peer's token, a car maker's refresh token) for storage."""
    return _fernet().encrypt(secret.encode("utf-8")).decode("ascii")


def secret_decrypt(stored: str) -> str:
    """The secret behind `secret_encrypt`; the first key of EVHUB_ENCRYPTION_KEYS encrypts, all decrypt."""
    return _fernet().decrypt(stored.encode("ascii")).decode("utf-8")
