"""The transactional outbox of the Upload service, and the sweeper of stale uploads.

CompleteUpload commits the upload's new state and an outbox row in one transaction and only
then answers. The relay turns each row into its effects — the video's status in the Metadata
service and, for a completed upload, a "video uploaded" job on the durable queue — and marks
it done. Each effect is idempotent (request ids, repeated transitions, consumers keyed by video
id), so a crash anywhere makes the relay repeat work, never lose it. Every replica runs a relay;
on PostgreSQL rows are claimed with SKIP LOCKED so replicas share the work.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from streamify.core.aio import wait_for_event
from streamify.core.db import run_in_thread
from streamify.core.metadata_client import MetadataClient
from streamify.core.queue import JobQueue
from streamify.upload.models import OutboxRow, UploadRow
from streamify.v1 import metadata_service_pb2 as meta
from streamify.v1.events_pb2 import VideoUploadedEvent
from streamify.v1.video_pb2 import VideoStatus

log = logging.getLogger(__name__)
BATCH = 20
MAX_BACKOFF_SECONDS = 60.0


def uploaded_event(row: UploadRow) -> VideoUploadedEvent:
    return VideoUploadedEvent(
        video=f"videos/{row.video_id}", owner=f"users/{row.owner}", bucket=row.bucket,
        key=row.object_key, size_bytes=row.size_bytes, content_type=row.content_type,
    )


class OutboxRelay:
    def __init__(self, sessions: sessionmaker[Session], metadata: MetadataClient, queue: JobQueue) -> None:
        self._sessions = sessions
        self._metadata = metadata
        self._queue = queue
        self._wake = asyncio.Event()

    def kick(self) -> None:
        self._wake.set()

    async def run(self, idle_seconds: float = 5.0) -> None:
        backoff = idle_seconds
        while True:
            try:
                done_all = await self.drain()
                backoff = idle_seconds if done_all else min(backoff * 2, MAX_BACKOFF_SECONDS)
            except Exception:  # keep relaying whatever one round did
                log.exception("outbox relay round failed")
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            self._wake.clear()
            await wait_for_event(self._wake, backoff)

    async def drain(self) -> bool:
        """Relays every pending row; True when none is left failing."""
        rows = await run_in_thread(self._pending)
        ok = True
        for row in rows:
            try:
                await self._deliver(row)
            except Exception as exc:  # noqa: BLE001 - recorded and retried
                ok = False
                log.warning("outbox row %s failed: %s", row.id, exc)
                await run_in_thread(self._record, row.id, False, str(exc)[:500])
            else:
                await run_in_thread(self._record, row.id, True, "")
        return ok

    async def _deliver(self, row: OutboxRow) -> None:
        if row.kind == "uploaded":
            event = VideoUploadedEvent.FromString(row.payload)
            await self._set_status(meta.UpdateVideoStatusRequest(
                name=event.video, status=VideoStatus.VIDEO_STATUS_UPLOADED,
                source_size_bytes=event.size_bytes, request_id=f"outbox-{row.upload_id}",
            ))
            await self._queue.publish(event.video.removeprefix("videos/"), row.payload)
        elif row.kind == "failed":
            await self._set_status(meta.UpdateVideoStatusRequest(
                name=f"videos/{await run_in_thread(self._video_of, row.upload_id)}",
                status=VideoStatus.VIDEO_STATUS_FAILED, failure_reason=row.payload.decode(),
                request_id=f"outbox-{row.upload_id}-failed",
            ))

    async def _set_status(self, request: meta.UpdateVideoStatusRequest) -> None:
        try:
            await self._metadata.update_status(request)
        except grpc.aio.AioRpcError as exc:
            # The video already moved past this status (a previous round got through, or the
            # transcoder started): the effect is in place.
            if exc.code() not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                raise

    def _pending(self) -> list[OutboxRow]:
        with self._sessions() as session:
            return list(session.scalars(
                select(OutboxRow).where(OutboxRow.done.is_(False)).order_by(OutboxRow.id).limit(BATCH)
            ))

    def _record(self, row_id: int, done: bool, error: str) -> None:
        with self._sessions() as session:
            row = session.get(OutboxRow, row_id)
            if row is not None:
                row.attempts += 1
                row.done = done
                row.last_error = error
                session.commit()

    def _video_of(self, upload_id: str) -> str:
        with self._sessions() as session:
            return session.get(UploadRow, upload_id).video_id
