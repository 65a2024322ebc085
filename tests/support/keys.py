"""The token keys and secrets of test deployments: fixed, so processes started apart agree."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streamify.core import token_keys
from streamify.core.auth import mint_token
from streamify.core.token_keys import SigningKey

TEST_KEYS = {
    identity: SigningKey(
        identity,
        Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"test {identity}".encode()).digest()),
    )
    for identity in token_keys.IDENTITIES
}
SIGNING_KEYS = token_keys.format_keys(TEST_KEYS, public=False)
TRUSTED_KEYS = token_keys.format_keys(TEST_KEYS, public=True)
MEDIA_GRANT_SECRET = "test-media-grant-secret-with-enough-bytes-0123456789"
PAGE_TOKEN_SECRET = "test-page-token-secret-with-enough-bytes-0123456789"

# Settings fields of a test deployment that signs and checks tokens (every key: one process of
# a test often plays several services).
SECRET_SETTINGS = {
    "signing_keys": SIGNING_KEYS,
    "trusted_keys": TRUSTED_KEYS,
    "media_grant_secret": MEDIA_GRANT_SECRET,
    "page_token_secret": PAGE_TOKEN_SECRET,
}


def signing_keys_of(*identities: str) -> str:
    """STREAMIFY_SIGNING_KEYS holding only these identities' keys."""
    return token_keys.format_keys({i: TEST_KEYS[i] for i in identities}, public=False)


def token(subject: str, kind: str = "user", ttl: int = 3600) -> str:
    """A token as the real issuer mints it: users with the `users` key, a service with its own."""
    if kind == "user":
        return mint_token(TEST_KEYS[token_keys.USERS], subject, ttl_seconds=ttl)
    return mint_token(TEST_KEYS[subject], kind="service", ttl_seconds=ttl)


def bearer(subject: str, kind: str = "user", ttl: int = 3600) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token(subject, kind, ttl)}"),)


# The same, as the STREAMIFY_* variables of a process started apart.
SECRET_ENV = {f"STREAMIFY_{name.upper()}": value for name, value in SECRET_SETTINGS.items()}
