"""Bearer tokens: EdDSA (Ed25519) JWTs naming a user or a service.

Header ``kid``: the identity whose key signed it (streamify.core.token_keys). Claims: ``sub``
(the user or service id), ``kind`` ("user" | "service"), ``iss``, ``iat``, ``exp``. A service
key signs only its own identity (``sub`` == ``kid``), the ``users`` key only user tokens.
The server wrapper verifies the ``authorization: Bearer <jwt>`` metadata of every non-public
call and puts the :class:`Principal` in a ContextVar that handlers read with
:func:`current_principal`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from streamify.core import errors, names
from streamify.core.errors import ApiError
from streamify.core.token_keys import USERS, SigningKey

__all__ = [
    "Kind",
    "Principal",
    "TokenVerifier",
    "current_principal",
    "mint_token",
    "optional_principal",
    "principal_var",
    "verify_token",
]

Kind = Literal["user", "service"]
_ALGORITHM = "EdDSA"
_MINT_HINT = "mint a new one with `streamify token`"


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
    key: SigningKey,
    subject: str | None = None,
    kind: Kind = "user",
    ttl_seconds: int = 3600,
    issuer: str = "streamify",
) -> str:
    """A signed token for `subject` (a service key: its own identity, the default), valid for
    `ttl_seconds`."""
    if kind not in ("user", "service"):
        raise ValueError(f"kind must be 'user' or 'service', not {kind!r}")
    if kind == "user" and key.identity != USERS:
        raise ValueError(f"user tokens are signed with the {USERS!r} key, not {key.identity!r}")
    if kind == "service":
        if subject not in (None, key.identity):
            raise ValueError(f"the {key.identity!r} key signs only {key.identity!r} tokens")
        subject = key.identity
    if subject is None:
        raise ValueError("a user token needs a subject")
    _check_subject(subject)
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    now = int(time.time())
    claims = {"sub": subject, "kind": kind, "iss": issuer, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, key.private, algorithm=_ALGORITHM, headers={"kid": key.identity})


def _expiry_text(token: str) -> str:
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
        if exp is None:
            return "an earlier time"
        return datetime.fromtimestamp(int(exp), UTC).isoformat(timespec="seconds")
    except Exception:  # noqa: BLE001
        return "an earlier time"


def verify_token(
    keys: Mapping[str, Ed25519PublicKey], token: str | None, issuer: str = "streamify"
) -> Principal:
    """The Principal a token names; ApiError UNAUTHENTICATED (TOKEN_MISSING, TOKEN_EXPIRED or
    TOKEN_INVALID) otherwise."""
    return _verify(keys, token, issuer)[0]


def _verify(
    keys: Mapping[str, Ed25519PublicKey], token: str | None, issuer: str
) -> tuple[Principal, float]:
    if not token:
        raise errors.unauthenticated(
            "missing bearer token: send `authorization: Bearer <token>` metadata; "
            "mint one with `streamify token`",
            "TOKEN_MISSING",
        )
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise _invalid(f"token is malformed ({exc})") from None
    kid = header.get("kid")
    if header.get("alg") != _ALGORITHM or not isinstance(kid, str):
        raise _invalid(
            f"token is not an {_ALGORITHM} token with a key id (`kid`); tokens of older "
            "Streamify versions are not accepted"
        )
    key = keys.get(kid)
    if key is None:
        raise _invalid(f"token is signed by key {kid[:63]!r}, which this server does not trust")
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
        raise _invalid(f"token signature does not match the {kid!r} key") from None
    except jwt.PyJWTError as exc:
        raise _invalid(f"token is malformed ({exc})") from None
    subject = claims.get("sub")
    kind = claims.get("kind", "user")
    if kind not in ("user", "service"):
        raise _invalid(f"token kind {kind!r} is not 'user' or 'service'")
    if not isinstance(subject, str) or not names.is_subject(subject):
        raise _invalid(f"token subject {subject!r} is not a valid user or service id")
    if (kind == "user") != (kid == USERS) or (kind == "service" and subject != kid):
        raise _invalid(f"the {kid!r} key cannot sign a {kind} token for {subject!r}")
    return Principal(subject=subject, kind=kind), float(claims["exp"])


def _invalid(why: str) -> ApiError:
    return errors.unauthenticated(f"invalid token: {why}; {_MINT_HINT}", "TOKEN_INVALID")


class TokenVerifier:
    """Verifies `authorization` metadata values ("Bearer <jwt>") for the server wrapper.

    A verified token is remembered (bounded) until its `exp`, so a client reusing its token pays
    for one signature check, not one per call; an expired entry is re-verified and fails with
    TOKEN_EXPIRED."""

    __slots__ = ("_cache", "_issuer", "_keys", "_max_entries")

    def __init__(
        self, keys: Mapping[str, Ed25519PublicKey], issuer: str, max_entries: int = 4096
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._max_entries = max_entries

    def __call__(self, authorization: str | None) -> Principal:
        if authorization is None:
            return verify_token(self._keys, None, self._issuer)  # raises TOKEN_MISSING
        hit = self._cache.get(authorization)
        if hit is not None:
            if hit[1] > time.time():
                return hit[0]
            del self._cache[authorization]
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _invalid("the `authorization` metadata must be `Bearer <token>`")
        principal, exp = _verify(self._keys, token.strip(), self._issuer)
        if len(self._cache) >= self._max_entries:
            self._cache.clear()
        self._cache[authorization] = (principal, exp)
        return principal
