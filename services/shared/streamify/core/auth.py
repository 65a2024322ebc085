"""Bearer tokens: HS256 JWTs naming a user or a service.

Claims: ``sub`` (the user or service id), ``kind`` ("user" | "service"), ``iss``, ``iat``,
``exp``. The server wrapper verifies the ``authorization: Bearer <jwt>`` metadata of every
non-public call and puts the :class:`Principal` in a ContextVar that handlers read with
:func:`current_principal`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import jwt

from streamify.core import errors, names
from streamify.core.errors import ApiError, ConfigurationError
from streamify.core.logs import get_logger

if TYPE_CHECKING:
    from streamify.core.config import Settings

__all__ = [
    "DEV_KEY_FILE",
    "Kind",
    "Principal",
    "TokenVerifier",
    "current_principal",
    "mint_token",
    "optional_principal",
    "principal_var",
    "signing_key",
    "strong_secret",
    "verify_token",
]

Kind = Literal["user", "service"]
DEV_KEY_FILE = "dev-signing.key"
_ALGORITHM = "HS256"
_MINT_HINT = "mint a new one with `streamify token`"

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user ("alice") or a service ("upload")."""

    subject: str
    kind: Kind

    @property
    def is_service(self) -> bool:
        return self.kind == "service"

    @property
    def user_name(self) -> str:
        """Resource name of the caller: "users/alice" (a service is "services/upload", which
        never equals a user's name, so ownership checks cannot match a service by accident)."""
        return (names.USERS if self.kind == "user" else names.SERVICES).name(self.subject)


principal_var: ContextVar[Principal | None] = ContextVar("streamify_principal", default=None)


def current_principal() -> Principal:
    """The authenticated caller of the current RPC; UNAUTHENTICATED if there is none (a public
    method, or code running outside an RPC)."""
    p = principal_var.get()
    if p is None:
        raise errors.unauthenticated(
            "this call needs a bearer token in the `authorization` metadata; "
            "mint one with `streamify token`",
            "TOKEN_MISSING",
        )
    return p


def optional_principal() -> Principal | None:
    return principal_var.get()


def _check_subject(subject: str) -> None:
    if not names.is_subject(subject):
        raise ValueError(
            f"invalid subject {subject!r}: use 1-63 characters of a-z, 0-9, '_', '.', '-', "
            "starting with a letter or digit"
        )


def mint_token(
    key: bytes,
    subject: str,
    kind: Kind = "user",
    ttl_seconds: int = 3600,
    issuer: str = "streamify",
) -> str:
    """A signed HS256 token for `subject`, valid for `ttl_seconds`."""
    if kind not in ("user", "service"):
        raise ValueError(f"kind must be 'user' or 'service', not {kind!r}")
    _check_subject(subject)
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    now = int(time.time())
    claims = {"sub": subject, "kind": kind, "iss": issuer, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, key, algorithm=_ALGORITHM)


def _expiry_text(token: str) -> str:
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
        if exp is None:
            return "an earlier time"
        return datetime.fromtimestamp(int(exp), UTC).isoformat(timespec="seconds")
    except Exception:  # noqa: BLE001
        return "an earlier time"


def verify_token(key: bytes, token: str | None, issuer: str = "streamify") -> Principal:
    """The Principal a token names; ApiError UNAUTHENTICATED (TOKEN_MISSING, TOKEN_EXPIRED or
    TOKEN_INVALID) otherwise."""
    return _verify(key, token, issuer)[0]


def _verify(key: bytes, token: str | None, issuer: str) -> tuple[Principal, float]:
    if not token:
        raise errors.unauthenticated(
            "missing bearer token: send `authorization: Bearer <token>` metadata; "
            "mint one with `streamify token`",
            "TOKEN_MISSING",
        )
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[_ALGORITHM],
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise errors.unauthenticated(
            f"token expired at {_expiry_text(token)}; {_MINT_HINT}", "TOKEN_EXPIRED"
        ) from None
    except jwt.InvalidIssuerError:
        raise _invalid(f"token was not issued by {issuer!r}") from None
    except jwt.InvalidSignatureError:
        raise _invalid("token signature does not match this server's key") from None
    except jwt.PyJWTError as exc:
        raise _invalid(f"token is malformed ({exc})") from None
    subject = claims.get("sub")
    kind = claims.get("kind", "user")
    if kind not in ("user", "service"):
        raise _invalid(f"token kind {kind!r} is not 'user' or 'service'")
    if not isinstance(subject, str) or not names.is_subject(subject):
        raise _invalid(f"token subject {subject!r} is not a valid user or service id")
    return Principal(subject=subject, kind=kind), float(claims["exp"])


def _invalid(why: str) -> ApiError:
    return errors.unauthenticated(f"invalid token: {why}; {_MINT_HINT}", "TOKEN_INVALID")


class TokenVerifier:
    """Verifies `authorization` metadata values ("Bearer <jwt>") for the server wrapper.

    A verified token is remembered (bounded) until its `exp`, so a client reusing its token pays
    for one HMAC check, not one per call; an expired entry is re-verified and fails with
    TOKEN_EXPIRED."""

    __slots__ = ("_cache", "_issuer", "_key", "_max_entries")

    def __init__(self, key: bytes, issuer: str, max_entries: int = 4096) -> None:
        self._key = key
        self._issuer = issuer
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._max_entries = max_entries

    def __call__(self, authorization: str | None) -> Principal:
        if authorization is None:
            return verify_token(self._key, None, self._issuer)  # raises TOKEN_MISSING
        hit = self._cache.get(authorization)
        if hit is not None:
            if hit[1] > time.time():
                return hit[0]
            del self._cache[authorization]
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _invalid("the `authorization` metadata must be `Bearer <token>`")
        principal, exp = _verify(self._key, token.strip(), self._issuer)
        if len(self._cache) >= self._max_entries:
            self._cache.clear()
        self._cache[authorization] = (principal, exp)
        return principal


# --- the signing key ----------------------------------------------------------------------

_warned_dev_keys: set[Path] = set()
MIN_SECRET_BYTES = 32


def strong_secret(settings: Settings, name: str, secret: str) -> bytes:
    """`secret` as the key bytes; outside embedded mode a ConfigurationError when it is too
    short to resist guessing (an HMAC key of a few characters is found offline from one token)."""
    key = secret.encode()
    if len(key) < MIN_SECRET_BYTES and not settings.embedded:
        raise ConfigurationError(
            f"{name} is {len(key)} bytes; use at least {MIN_SECRET_BYTES} random ones, "
            "e.g. `openssl rand -base64 48`"
        )
    return key


def signing_key(settings: Settings) -> bytes:
    """``settings.jwt_secret``; in embedded mode without one, a development key kept in
    ``data_dir/dev-signing.key`` (created 0600 on first use, shared by every local process so
    `streamify token` mints tokens the servers accept). Otherwise a ConfigurationError."""
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value()
        if secret:
            return strong_secret(settings, "STREAMIFY_JWT_SECRET", secret)
    if not settings.embedded:
        raise ConfigurationError(
            "no token signing key: set STREAMIFY_JWT_SECRET (a long random string shared by all "
            "services), or STREAMIFY_EMBEDDED=true for a local development key"
        )
    path = Path(settings.data_dir) / DEV_KEY_FILE
    key = _load_or_create_dev_key(path)
    resolved = path.resolve()
    if resolved not in _warned_dev_keys:
        _warned_dev_keys.add(resolved)
        log.warning(
            "using the DEVELOPMENT token signing key in %s (embedded mode); set "
            "STREAMIFY_JWT_SECRET for anything but local use",
            resolved,
        )
    return key


_MEDIA_GRANT_CONTEXT = b"streamify media grants"


def media_grant_key(settings: Settings) -> bytes:
    """The HMAC key of /media grants (streamify.core.media_grants): settings.media_grant.secret
    when set, else derived from the JWT signing key (so one secret configures a deployment)."""
    if settings.media_grant.secret is not None:
        secret = settings.media_grant.secret.get_secret_value()
        return strong_secret(settings, "STREAMIFY_MEDIA_GRANT_SECRET", secret)
    return hmac.new(signing_key(settings), _MEDIA_GRANT_CONTEXT, hashlib.sha256).digest()


def _load_or_create_dev_key(path: Path) -> bytes:
    for _ in range(50):
        try:
            key = path.read_bytes().strip()
        except FileNotFoundError:
            key = b""
        if key:
            return key
        if not path.exists():
            _create_dev_key(path)
            continue
        time.sleep(0.01)  # another process is writing it (should not happen: link is atomic)
    raise ConfigurationError(f"development signing key {path} exists but is empty; delete it")


def _create_dev_key(path: Path) -> None:
    """Write a random key to a private temp file, then hard-link it into place: the link is
    atomic and fails if another process won the race, so every process ends up with one key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_hex(32).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
