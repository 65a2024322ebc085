"""What the orchestrator does when a video is deleted (an event of the Metadata service's
feed): its job stops and is forgotten, and its media is deleted from the media bucket.

Two passes over the media: one when the event arrives, and one `purge_delay_seconds` later
(a second follower that lags), for the outputs a task's worker was still uploading when the
job went away; its lease is not renewed, so it stops within a heartbeat. Idempotent: an event
handled twice finds nothing left to do.
"""

from __future__ import annotations

import logging
from typing import Any

from streamify.core import names, storage_keys
from streamify.core.db import run_in_thread
from streamify.transcode.orchestrator.dispatch import Orchestrator
from streamify.v1.metadata_service_pb2 import VideoEvent, VideoEventType

log = logging.getLogger(__name__)
DELETE_BATCH = 1000  # the most keys one DeleteObjects takes


class MediaPurger:
    """Deletes every object under a deleted video's media prefix."""

    def __init__(self, s3: Any, media_bucket: str) -> None:
        self._s3 = s3
        self._bucket = media_bucket

    async def __call__(self, event: VideoEvent) -> None:
        if event.type != VideoEventType.VIDEO_EVENT_TYPE_DELETED:
            return
        video_id = names.VIDEOS.id_in(event.video)
        removed = await run_in_thread(self._purge, storage_keys.media_prefix(video_id))
        if removed:
            log.info("video %s deleted: removed %d media objects", video_id, removed)

    def _purge(self, prefix: str) -> int:
        removed = 0
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(
            Bucket=self._bucket, Prefix=prefix, PaginationConfig={"PageSize": DELETE_BATCH}
        ):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents") or []]
            if keys:
                self._s3.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True}
                )
                removed += len(keys)
        return removed


class DeletedVideoCleaner:
    """The first pass: the job stops and is forgotten, then the media goes."""

    def __init__(self, orchestrator: Orchestrator, purge: MediaPurger) -> None:
        self._orchestrator = orchestrator
        self._purge = purge

    async def __call__(self, event: VideoEvent) -> None:
        if event.type != VideoEventType.VIDEO_EVENT_TYPE_DELETED:
            return
        await self._orchestrator.forget_job(names.VIDEOS.id_in(event.video))
        await self._purge(event)
