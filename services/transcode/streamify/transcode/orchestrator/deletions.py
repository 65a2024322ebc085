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


class CdnInvalidation:
    """Tells a CloudFront distribution to drop what its edges cached of a video."""

    def __init__(self, cloudfront: Any, distribution_id: str) -> None:
        self._cloudfront = cloudfront
        self._distribution = distribution_id

    def __call__(self, video_id: str, reference: str) -> None:
        # the same CallerReference again (a repeated event) is the same invalidation, not a new one
        self._cloudfront.create_invalidation(
            DistributionId=self._distribution,
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": [f"/{storage_keys.media_prefix(video_id)}*"]},
                "CallerReference": reference,
            },
        )


class MediaPurger:
    """Deletes every object under a deleted video's media prefix, and invalidates the CDN's
    copies when there is a CloudFront in front of the bucket. `name` tells this pass's CDN
    invalidation from another's."""

    def __init__(
        self, s3: Any, media_bucket: str, cdn: CdnInvalidation | None = None, name: str = ""
    ) -> None:
        self._s3 = s3
        self._bucket = media_bucket
        self._cdn = cdn
        self._name = name

    def again(self, name: str) -> MediaPurger:
        """The same purge, for another pass."""
        return MediaPurger(self._s3, self._bucket, self._cdn, name)

    async def __call__(self, event: VideoEvent) -> None:
        if event.type != VideoEventType.VIDEO_EVENT_TYPE_DELETED:
            return
        video_id = names.VIDEOS.id_in(event.video)
        removed = await run_in_thread(self._purge, storage_keys.media_prefix(video_id))
        if removed:
            log.info("video %s deleted: removed %d media objects", video_id, removed)
        if self._cdn is not None:
            reference = f"deleted-{video_id}-{event.sequence}-{self._name}"
            await run_in_thread(self._cdn, video_id, reference)

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
