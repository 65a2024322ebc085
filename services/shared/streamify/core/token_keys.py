"""The Ed25519 key pairs of bearer tokens: one per identity, named by the token's `kid`.

* A service signs its own tokens only: the `upload` key mints tokens whose subject is `upload`,
  and nothing else. What each identity may then call is `streamify.core.access`.
* The `users` key signs user tokens (any user). It belongs to whoever issues them: the
  operator's `streamify token`, or a login service in front of Streamify. No server holds it.
* Servers verify with public keys only (STREAMIFY_TRUSTED_KEYS). A process holds the private
  keys of the identities it signs as (STREAMIFY_SIGNING_KEYS): the gateway's pod has the gateway
  key, the worker's the worker key, the Metadata service none.

Both settings are lists of `identity=key` (comma- or newline-separated), each key the 32 raw
bytes in unpadded base64url, as in a JWK's `d` (private) and `x` (public) members. In embedded
mode a missing setting defaults to a development key set kept in `data_dir/dev-token-keys`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from streamify.core import dev_keys
from streamify.core.errors import ConfigurationError

if TYPE_CHECKING:
    from streamify.core.config import Settings

__all__ = [
    "DEV_KEYS_FILE",
    "IDENTITIES",
    "OPERATOR",
    "SERVICE_IDENTITIES",
    "USERS",
    "SigningKey",
    "format_keys",
    "generate",
    "parse_private_keys",
    "parse_public_keys",
    "public_key_text",
    "signing_key",
    "trusted_keys",
]

USERS = "users"
OPERATOR = "operator"
# upload → Metadata; transcode (the orchestrator) → Metadata; gateway (the /media check) →
# Metadata; worker → the orchestrator's worker stream; operator → anything (ops and tests).
SERVICE_IDENTITIES = ("upload", "transcode", "gateway", "worker", OPERATOR)
IDENTITIES = (USERS, *SERVICE_IDENTITIES)
DEV_KEYS_FILE = "dev-token-keys"
_RAW_KEY_BYTES = 32
_SEPARATORS = re.compile(r"[,\s]+")
_GENERATE_HINT = "generate a key set with `streamify keys`"


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The private key of one identity: what mints that identity's tokens."""

    identity: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()


def generate(identities: tuple[str, ...] = IDENTITIES) -> dict[str, SigningKey]:
    """A new random key pair per identity."""
    return {i: SigningKey(i, Ed25519PrivateKey.generate()) for i in identities}


# --- text form ------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _private_raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def public_key_text(key: Ed25519PublicKey) -> str:
    return _b64(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def format_keys(keys: Mapping[str, SigningKey], *, public: bool) -> str:
    """`identity=key,…` of the private keys, or of their public halves."""
    return ",".join(
        f"{i}={public_key_text(k.public) if public else _b64(_private_raw(k.private))}"
        for i, k in keys.items()
    )


def _entries(text: str, setting: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for entry in filter(None, _SEPARATORS.split(text.strip())):
        identity, sep, value = entry.partition("=")
        if not sep or not value:
            raise ConfigurationError(
                f"{setting}: {entry[:20]!r} is not `identity=key`; {_GENERATE_HINT}"
            )
        if identity not in IDENTITIES:
            raise ConfigurationError(
                f"{setting}: unknown identity {identity!r}; the identities are "
                f"{', '.join(IDENTITIES)}"
            )
        if identity in found:
            raise ConfigurationError(f"{setting}: {identity!r} is listed twice")
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != _RAW_KEY_BYTES:
            raise ConfigurationError(
                f"{setting}: the key of {identity!r} is not {_RAW_KEY_BYTES} bytes of unpadded "
                f"base64url; {_GENERATE_HINT}"
            )
        found[identity] = raw
    return found


def parse_private_keys(text: str, setting: str = "STREAMIFY_SIGNING_KEYS") -> dict[str, SigningKey]:
    return {
        i: SigningKey(i, Ed25519PrivateKey.from_private_bytes(raw))
        for i, raw in _entries(text, setting).items()
    }


def parse_public_keys(
    text: str, setting: str = "STREAMIFY_TRUSTED_KEYS"
) -> dict[str, Ed25519PublicKey]:
    return {
        i: Ed25519PublicKey.from_public_bytes(raw) for i, raw in _entries(text, setting).items()
    }


# --- from the settings ---------------------------------------------------------------------


_parsed_private: dict[str, dict[str, SigningKey]] = {}
_parsed_public: dict[str, dict[str, Ed25519PublicKey]] = {}
_dev_sets: dict[Path, dict[str, SigningKey]] = {}
_checked: set[tuple[SigningKey, str | None]] = set()


def _dev_keys(settings: Settings) -> dict[str, SigningKey]:
    path = (Path(settings.data_dir) / DEV_KEYS_FILE).resolve()
    found = _dev_sets.get(path)
    if found is None:
        text = dev_keys.load_or_create(
            path, lambda: format_keys(generate(), public=False).encode()
        ).decode()
        found = _dev_sets[path] = parse_private_keys(text, str(path))
        dev_keys.warn_once(path, "token keys", "STREAMIFY_SIGNING_KEYS and STREAMIFY_TRUSTED_KEYS")
    return found


def _signing_keys(settings: Settings) -> Mapping[str, SigningKey]:
    text = settings.signing_keys.get_secret_value() if settings.signing_keys else ""
    if text:
        if text not in _parsed_private:
            _parsed_private[text] = parse_private_keys(text)
        return _parsed_private[text]
    return _dev_keys(settings) if settings.embedded else {}


def _trusted_keys(settings: Settings) -> Mapping[str, Ed25519PublicKey]:
    text = settings.trusted_keys or ""
    if text:
        if text not in _parsed_public:
            _parsed_public[text] = parse_public_keys(text)
        return _parsed_public[text]
    if settings.embedded:
        return {i: k.public for i, k in _dev_keys(settings).items()}
    return {}


def signing_key(settings: Settings, identity: str) -> SigningKey:
    """The key this process signs `identity`'s tokens with; a ConfigurationError naming the
    setting when it holds none, or one that STREAMIFY_TRUSTED_KEYS (when set) contradicts."""
    key = _signing_keys(settings).get(identity)
    if key is not None and (key, settings.trusted_keys) in _checked:
        return key
    if key is None:
        raise ConfigurationError(
            f"this process signs tokens as {identity!r} but STREAMIFY_SIGNING_KEYS has no key "
            f"for it (give it `{identity}=<private key>`); {_GENERATE_HINT}"
        )
    expected = _trusted_keys(settings).get(identity) if settings.trusted_keys else None
    if expected is not None and public_key_text(expected) != public_key_text(key.public):
        raise ConfigurationError(
            f"the signing key of {identity!r} (STREAMIFY_SIGNING_KEYS) does not match its "
            f"public key in STREAMIFY_TRUSTED_KEYS: both must come from one key set; "
            f"{_GENERATE_HINT}"
        )
    _checked.add((key, settings.trusted_keys))
    return key


def trusted_keys(settings: Settings) -> Mapping[str, Ed25519PublicKey]:
    """The public keys this server accepts tokens from, by identity; a ConfigurationError when
    there are none."""
    trusted = _trusted_keys(settings)
    if not trusted:
        raise ConfigurationError(
            "no token verification keys: set STREAMIFY_TRUSTED_KEYS (the public keys, "
            f"`identity=key,…`), or STREAMIFY_EMBEDDED=true for development keys; {_GENERATE_HINT}"
        )
    return trusted
