"""Where a video's objects live in the object store: one definition shared by the services.

* uploads bucket:
  * ``incoming/{video}/{upload}`` -- where a single pre-signed PUT lands. The URL stays valid
    until it expires, so these bytes can change at any time and are never transcoded;
  * ``sources/{video}/{upload}`` -- the sealed source of one upload, the only key the
    Transcode service reads. No URL is ever signed for it as a single PUT: CompleteUpload
    copies the incoming object there (a conditional copy that never overwrites), and a
    multipart upload is assembled there by completing it, after which its part URLs are dead.
* media bucket: ``videos/{video}/…`` -- everything a player fetches (playlists, segments,
  poster); the CDN serves this tree as stored and a media grant covers exactly this prefix.

Pure: no I/O, no settings.
"""

from __future__ import annotations

__all__ = [
    "INCOMING_ROOT",
    "MEDIA_ROOT",
    "incoming_key",
    "incoming_prefix",
    "media_prefix",
    "source_key",
    "source_prefix",
]

MEDIA_ROOT = "videos/"  # every object a player may fetch is below it
INCOMING_ROOT = "incoming/"  # single-PUT landing keys; never read as a source


def source_prefix(video_id: str) -> str:
    return f"sources/{video_id}/"


def source_key(video_id: str, upload_id: str) -> str:
    return f"{source_prefix(video_id)}{upload_id}"


def incoming_prefix(video_id: str) -> str:
    return f"{INCOMING_ROOT}{video_id}/"


def incoming_key(video_id: str, upload_id: str) -> str:
    return f"{incoming_prefix(video_id)}{upload_id}"


def media_prefix(video_id: str) -> str:
    return f"{MEDIA_ROOT}{video_id}/"
