"""Where a video's objects live in the object store: one definition shared by the services.

* uploads bucket: ``sources/{video}/{upload}`` -- the bytes of one upload (Upload writes them,
  the Transcode orchestrator finds the newest one under the video's prefix);
* media bucket: ``videos/{video}/…`` -- everything a player fetches (playlists, segments,
  poster); the CDN serves this tree as stored and a media grant covers exactly this prefix.

Pure: no I/O, no settings.
"""

from __future__ import annotations

__all__ = ["MEDIA_ROOT", "media_prefix", "source_key", "source_prefix"]

MEDIA_ROOT = "videos/"  # every object a player may fetch is below it


def source_prefix(video_id: str) -> str:
    return f"sources/{video_id}/"


def source_key(video_id: str, upload_id: str) -> str:
    return f"{source_prefix(video_id)}{upload_id}"


def media_prefix(video_id: str) -> str:
    return f"{MEDIA_ROOT}{video_id}/"
