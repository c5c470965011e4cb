"""Secrets that callers present (portal client keys, OCPI tokens): stored as digests, compared in constant time."""

import hashlib
import hmac
import secrets


def token_new() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, digest: str) -> bool:
    return hmac.compare_digest(token_digest(token), digest)
