"""What the Upload service does when a video is deleted (an event of the Metadata service's
feed): its unfinished uploads are aborted and every byte it stored for the video, incoming or
sealed, is deleted. Idempotent: an event handled twice finds nothing left to do."""

from __future__ import annotations

import logging

from streamify.core import names, storage_keys
from streamify.core.db import run_in_thread
from streamify.upload.abandon import abort_upload
from streamify.upload.outbox import OutboxRelay
from streamify.upload.storage import UploadStorage
from streamify.upload.store import UploadStore
from streamify.v1.metadata_service_pb2 import VideoEvent, VideoEventType

log = logging.getLogger(__name__)


class DeletedVideoCleaner:
    def __init__(self, store: UploadStore, storage: UploadStorage, relay: OutboxRelay) -> None:
        self._store = store
        self._storage = storage
        self._relay = relay

    async def __call__(self, event: VideoEvent) -> None:
        if event.type != VideoEventType.VIDEO_EVENT_TYPE_DELETED:
            return
        video_id = names.VIDEOS.id_in(event.video)
        for row in await run_in_thread(self._store.pending_of_video, video_id):
            await abort_upload(self._store, self._storage, row, "the video was deleted")
            self._relay.kick()
        removed = await run_in_thread(self._delete_objects, video_id)
        log.info("video %s deleted: removed %d stored objects", video_id, removed)

    def _delete_objects(self, video_id: str) -> int:
        prefixes = (storage_keys.incoming_prefix(video_id), storage_keys.source_prefix(video_id))
        keys = [key for prefix in prefixes for key in self._storage.keys_under(prefix)]
        for key in keys:
            self._storage.delete(key)
        return len(keys)
