"""Signed media grants: read access to one video's objects under /media until an expiry.

A grant is one path segment right after the video's directory:

    /media/videos/{id}/grant.{expires}.{signature}/master.m3u8

* resource: the key prefix ``videos/{id}/`` -- one grant covers the master playlist, every media
  playlist, every segment and the poster;
* ``signature = base64url(HMAC-SHA256(key, "videos/{id}/\\n{expires}"))`` (no padding),
  ``expires`` = Unix seconds;
* in the path, not in a query or a cookie, because every URI inside our playlists is relative:
  a player resolves ``720p/index.m3u8`` and then ``seg_00001.m4s`` against the URL it fetched,
  so every request of the video carries the grant with no player code at all (hls.js and Shaka
  with their defaults, AVPlayer, VLC, ffmpeg). A query string is dropped by that resolution.

The gateway's check (``streamify.gateway.authz``) verifies the segment and the gateway then
removes it from the path before its cache, so every viewer shares one cache entry per object
while no private object is served without a valid grant. The grant cannot be widened: the video
id is inside the MAC, and ``..`` in a path is normalised away before the check.

The signer (Metadata, which knows who may watch) and the verifier share one key
(``streamify.core.shared_secrets.media_grant_key``). This module is pure: no I/O, no settings.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from streamify.core import names
from streamify.core.storage_keys import media_prefix

__all__ = [
    "GRANT_SEGMENT",
    "MediaKey",
    "grant_segment",
    "parse_media_key",
    "sign",
    "verify",
    "with_grant",
]

GRANT_SEGMENT = re.compile(r"grant\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")
# an object path under /media that belongs to a video: videos/{id}/[grant.E.S/]{rest}
_MEDIA_KEY = re.compile(rf"^videos/({names.ID})/(?:(grant\.[^/]*)/)?([^?#]+)$")


@dataclass(frozen=True)
class MediaKey:
    """A /media path split into the video, the grant segment it carries (or "") and the
    object key in the media bucket."""

    video_id: str
    grant: str
    object_key: str


def parse_media_key(path: str) -> MediaKey | None:
    """``videos/{id}/[grant.../]rest`` -> MediaKey; None for anything that is not one video's
    object (other prefixes, dot segments, an empty rest)."""
    m = _MEDIA_KEY.match(path)
    if m is None:
        return None
    video_id, grant, rest = m.group(1), m.group(2) or "", m.group(3)
    if any(part in ("", ".", "..") for part in rest.split("/")):
        return None
    return MediaKey(video_id, grant, f"{media_prefix(video_id)}{rest}")


def _mac(key: bytes, resource: str, expires: int) -> str:
    digest = hmac.new(key, f"{resource}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(
    key: bytes, video_id: str, ttl_seconds: float, now: float | None = None
) -> tuple[int, str]:
    """(expires, signature) for read access to the video's objects."""
    expires = int((time.time() if now is None else now) + ttl_seconds)
    return expires, _mac(key, media_prefix(video_id), expires)


def grant_segment(key: bytes, video_id: str, ttl_seconds: float, now: float | None = None) -> str:
    """The path segment ``grant.{expires}.{signature}``."""
    expires, signature = sign(key, video_id, ttl_seconds, now)
    return f"grant.{expires}.{signature}"


def with_grant(url: str, video_id: str, segment: str) -> str:
    """`url` (``.../videos/{id}/rest``) with the grant segment after the video's directory."""
    marker = f"/{media_prefix(video_id)}"
    head, found, rest = url.partition(marker)
    if not found:
        raise ValueError(f"{url!r} is not an object of video {video_id}")
    return f"{head}{marker}{segment}/{rest}"


def verify(key: bytes, video_id: str, segment: str, now: float | None = None) -> bool:
    """True when `segment` is a valid, unexpired grant for the video."""
    m = GRANT_SEGMENT.fullmatch(segment)
    if m is None:
        return False
    expires = int(m.group(1))
    if expires < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(_mac(key, media_prefix(video_id), expires), m.group(2))
