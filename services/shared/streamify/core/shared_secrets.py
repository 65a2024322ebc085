"""The two HMAC secrets a deployment configures: /media grants and list page tokens.

Media grants are signed by the Metadata service and checked by the gateway's /media check; page
tokens are signed and read by the Metadata service alone. Outside embedded mode each must be set
(at least 32 bytes); in embedded mode a missing one is derived from a development secret kept
in `data_dir/dev-secret.key`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from streamify.core import dev_keys
from streamify.core.errors import ConfigurationError

if TYPE_CHECKING:
    from streamify.core.config import Settings

__all__ = ["DEV_SECRET_FILE", "MIN_SECRET_BYTES", "media_grant_key", "page_token_key"]

DEV_SECRET_FILE = "dev-secret.key"
MIN_SECRET_BYTES = 32


def media_grant_key(settings: Settings) -> bytes:
    """The HMAC key of /media grants (streamify.core.media_grants)."""
    return _secret(
        settings, "STREAMIFY_MEDIA_GRANT_SECRET", settings.media_grant.secret, b"media grants"
    )


def page_token_key(settings: Settings) -> bytes:
    """The HMAC key of ListVideos page tokens."""
    return _secret(settings, "STREAMIFY_PAGE_TOKEN_SECRET", settings.page_token_secret, b"pages")


def _secret(settings: Settings, name: str, configured: SecretStr | None, purpose: bytes) -> bytes:
    value = configured.get_secret_value().encode() if configured is not None else b""
    if value:
        if len(value) < MIN_SECRET_BYTES and not settings.embedded:
            raise ConfigurationError(
                f"{name} is {len(value)} bytes; use at least {MIN_SECRET_BYTES} random ones, "
                "e.g. `openssl rand -base64 48`"
            )
        return value
    if not settings.embedded:
        raise ConfigurationError(
            f"{name} is not set: give it at least {MIN_SECRET_BYTES} random bytes (e.g. "
            "`openssl rand -base64 48`; `streamify k8s-secrets` generates one for Kubernetes), "
            "or set STREAMIFY_EMBEDDED=true for a development secret"
        )
    path = Path(settings.data_dir) / DEV_SECRET_FILE
    dev = dev_keys.load_or_create(path, lambda: secrets.token_hex(32).encode())
    dev_keys.warn_once(path, "secret", name)
    return hmac.new(dev, b"streamify " + purpose, hashlib.sha256).digest()
