"""The transactional outbox of the Upload service, and the sweeper of stale uploads.

CompleteUpload commits the upload's new state and an outbox row in one transaction and only
then answers. The relay turns each row into its effects — the video's status in the Metadata
service and, for a completed upload, a "video uploaded" job on the durable queue — and marks
it done. Each effect is idempotent (request ids, repeated transitions, consumers keyed by video
id), so a crash anywhere makes the relay repeat work, never lose it. Every replica runs a relay;
a relay claims a batch of rows before delivering them (a conditional UPDATE that only one relay
can win, after a SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL so relays do not queue behind
each other), so replicas share the rows instead of delivering each one twice. A claim lasts
CLAIM_SECONDS: the rows of a relay that died are taken over after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time

import grpc
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from streamify.core import names
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
CLAIM_SECONDS = 60.0


def uploaded_event(row: UploadRow) -> VideoUploadedEvent:
    return VideoUploadedEvent(
        video=names.VIDEOS.name(row.video_id),
        owner=names.USERS.name(row.owner),
        bucket=row.bucket,
        key=row.source_key,
        size_bytes=row.size_bytes,
        content_type=row.content_type,
    )


class OutboxRelay:
    def __init__(
        self, sessions: sessionmaker[Session], metadata: MetadataClient, queue: JobQueue
    ) -> None:
        self._sessions = sessions
        self._metadata = metadata
        self._queue = queue
        self._wake = asyncio.Event()
        self.relay_id = secrets.token_hex(8)

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
        claiming = asyncio.ensure_future(run_in_thread(self._claim))
        ok = True
        try:
            # shielded: a replica stopped now still learns what it claimed, to hand it back
            rows = await asyncio.shield(claiming)
            for row in rows:
                try:
                    await self._deliver(row)
                except Exception as exc:  # noqa: BLE001 - recorded and retried
                    ok = False
                    log.warning("outbox row %s failed: %s", row.id, exc)
                    await run_in_thread(self._record, row.id, False, str(exc)[:500])
                else:
                    await run_in_thread(self._record, row.id, True, "")
        except BaseException:
            # stopping (or a bug): hand the rows not yet delivered back at once, so the next
            # relay (this replica restarted, or another) need not wait for the claim to run out
            with contextlib.suppress(BaseException):
                await claiming  # the claim's thread cannot be stopped: let it land first
            self._release()
            raise
        return ok

    async def _deliver(self, row: OutboxRow) -> None:
        if row.kind == "uploaded":
            event = VideoUploadedEvent.FromString(row.payload)
            exists = await self._set_status(
                meta.UpdateVideoStatusRequest(
                    name=event.video,
                    status=VideoStatus.VIDEO_STATUS_UPLOADED,
                    source_size_bytes=event.size_bytes,
                    source_upload=names.UPLOADS.name(row.upload_id),
                    request_id=f"outbox-{row.upload_id}",
                )
            )
            if exists:  # a video deleted meanwhile is not transcoded
                await self._queue.publish(names.VIDEOS.id_in(event.video), row.payload)
        elif row.kind == "failed":
            await self._set_status(
                meta.UpdateVideoStatusRequest(
                    name=names.VIDEOS.name(await run_in_thread(self._video_of, row.upload_id)),
                    status=VideoStatus.VIDEO_STATUS_FAILED,
                    failure_reason=row.payload.decode(),
                    request_id=f"outbox-{row.upload_id}-failed",
                )
            )

    async def _set_status(self, request: meta.UpdateVideoStatusRequest) -> bool:
        """Reports the status; False when the video no longer exists (it was deleted)."""
        try:
            await self._metadata.update_status(request)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return False
            # The video already moved past this status (a previous round got through, or the
            # transcoder started): the effect is in place.
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
        return True

    def _claim(self) -> list[OutboxRow]:
        """Up to BATCH pending rows that no other relay holds, now held by this one."""
        now = int(time.time() * 1_000_000)
        until = now + int(CLAIM_SECONDS * 1_000_000)
        claimable = (OutboxRow.done.is_(False)) & (OutboxRow.claimed_until_us < now)
        with self._sessions() as session:
            ids = list(
                session.scalars(
                    select(OutboxRow.id)
                    .where(claimable)
                    .order_by(OutboxRow.id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            if not ids:
                return []
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(ids), claimable)
                .values(claimed_by=self.relay_id, claimed_until_us=until)
            )
            session.commit()
            return list(
                session.scalars(
                    select(OutboxRow)
                    .where(
                        OutboxRow.id.in_(ids),
                        OutboxRow.claimed_by == self.relay_id,
                        OutboxRow.claimed_until_us == until,
                    )
                    .order_by(OutboxRow.id)
                )
            )

    def _release(self) -> None:
        with self._sessions() as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.claimed_by == self.relay_id, OutboxRow.done.is_(False))
                .values(claimed_until_us=0)
            )
            session.commit()

    def _record(self, row_id: int, done: bool, error: str) -> None:
        with self._sessions() as session:
            row = session.get(OutboxRow, row_id)
            if row is not None and row.claimed_by == self.relay_id:
                row.attempts += 1
                row.done = done
                row.last_error = error
                row.claimed_until_us = 0  # a failed row is free for the next round, any relay
                session.commit()

    def _video_of(self, upload_id: str) -> str:
        with self._sessions() as session:
            upload = session.get(UploadRow, upload_id)
            # An outbox row is written with its upload's row, and upload rows are never deleted.
            assert upload is not None, f"outbox row for unknown upload {upload_id}"
            return upload.video_id
