"""Signed media grants: read access to one video's objects under /media until an expiry.

The CloudFront model (signed URL or signed cookies with an expiry), with an HMAC instead of an
RSA key pair because the signer (Metadata, which knows who may watch) and the verifier (the
gateway's authz server) share the settings' secret:

* resource: the key prefix ``videos/{id}/`` -- one grant covers the master playlist, every media
  playlist, every segment and the poster;
* ``Signature = base64url(HMAC-SHA256(key, "videos/{id}/\\n{expires}"))`` (no padding),
  ``Expires`` = Unix seconds;
* as a query (``?Expires=...&Signature=...``, only useful on the first URL: hls.js does not
  carry a query over to relative URLs) or, better for players, as two cookies scoped to
  ``Path=/media/videos/{id}/`` (``Streamify-Expires``, ``Streamify-Signature``) that the browser
  sends with every playlist and segment request of that video.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode

__all__ = [
    "COOKIE_EXPIRES",
    "COOKIE_SIGNATURE",
    "VIDEO_KEY",
    "cookies_for",
    "media_grant_key",
    "resource_of",
    "sign",
    "signed_query",
    "verify",
    "verify_request",
]

COOKIE_EXPIRES = "Streamify-Expires"
COOKIE_SIGNATURE = "Streamify-Signature"
# an object key under the media bucket that belongs to a video: videos/{id}/{rest}
VIDEO_KEY = re.compile(r"^videos/([a-z0-9][a-z0-9-]{0,62})/[^?#]+$")
_CONTEXT = b"streamify media grants"


def media_grant_key(settings: object) -> bytes:
    """The HMAC key: settings.media_grant_secret when set, else derived from the JWT signing key
    (so one secret configures a deployment)."""
    secret = getattr(settings, "media_grant_secret", None)
    if secret is not None:
        value = secret.get_secret_value() if hasattr(secret, "get_secret_value") else str(secret)
        return value.encode()
    from streamify.core.auth import signing_key

    return hmac.new(signing_key(settings), _CONTEXT, hashlib.sha256).digest()  # type: ignore[arg-type]


def resource_of(video_id: str) -> str:
    return f"videos/{video_id}/"


def _mac(key: bytes, resource: str, expires: int) -> str:
    digest = hmac.new(key, f"{resource}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(key: bytes, video_id: str, ttl_seconds: float, now: float | None = None) -> tuple[int, str]:
    """(expires, signature) for read access to the video's objects."""
    expires = int((time.time() if now is None else now) + ttl_seconds)
    return expires, _mac(key, resource_of(video_id), expires)


def signed_query(key: bytes, video_id: str, ttl_seconds: float) -> str:
    expires, signature = sign(key, video_id, ttl_seconds)
    return urlencode({"Expires": expires, "Signature": signature})


def cookies_for(
    key: bytes, video_id: str, ttl_seconds: float, *, path_prefix: str = "/media/", secure: bool = False
) -> list[str]:
    """Set-Cookie header values granting the video, scoped to its media path."""
    expires, signature = sign(key, video_id, ttl_seconds)
    attrs = f"; Path={path_prefix}{resource_of(video_id)}; Max-Age={int(ttl_seconds)}; HttpOnly; SameSite=None"
    if secure:
        attrs += "; Secure"
    return [f"{COOKIE_EXPIRES}={expires}{attrs}", f"{COOKIE_SIGNATURE}={signature}{attrs}"]


def verify(key: bytes, video_id: str, expires: str | int | None, signature: str | None, now: float | None = None) -> bool:
    if not expires or not signature:
        return False
    try:
        exp = int(expires)
    except (TypeError, ValueError):
        return False
    if exp < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(_mac(key, resource_of(video_id), exp), signature)


def verify_request(key: bytes, video_id: str, query: str, cookie_header: str | None) -> bool:
    """True when the query or the cookies carry a valid, unexpired grant for the video."""
    if query:
        q = parse_qs(query, keep_blank_values=False)
        if verify(key, video_id, (q.get("Expires") or [None])[0], (q.get("Signature") or [None])[0]):
            return True
    if cookie_header:
        jar = SimpleCookie()
        try:
            jar.load(cookie_header)
        except Exception:  # noqa: BLE001 - a malformed cookie header is no grant
            return False
        exp, sig = jar.get(COOKIE_EXPIRES), jar.get(COOKIE_SIGNATURE)
        if exp is not None and sig is not None and verify(key, video_id, exp.value, sig.value):
            return True
    return False
