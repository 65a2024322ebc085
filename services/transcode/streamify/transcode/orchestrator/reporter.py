"""Tells the Metadata service where each video stands, so WatchVideo subscribers see it move.

* Progress (PROCESSING with completed/total tasks and the stage) is throttled: at most one
  update per job every `interval` seconds, the latest one winning, except that a change of
  stage or a first playable manifest is sent at once. A progress update is dropped when the
  job is no longer active in the database (so a late one can never move a finished video back
  to PROCESSING from this replica).
* Final states (READY with the renditions, FAILED with the reason) are sent at once and
  recorded on the job (`notified_state`); the sweeper re-sends those the Metadata service did
  not acknowledge (it was down), so a video never stays PROCESSING because a call was lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import grpc

from streamify.core import names
from streamify.core.aio import wait_for_event
from streamify.core.db import run_in_thread
from streamify.core.metadata_client import MetadataClient
from streamify.transcode.orchestrator import dag
from streamify.transcode.orchestrator.assembly import (
    AssemblyError,
    final_playlists,
    processing_result,
)
from streamify.transcode.orchestrator.store import Snapshot, Store
from streamify.v1 import metadata_service_pb2 as meta
from streamify.v1.video_pb2 import Progress, VideoStatus

log = logging.getLogger(__name__)

CANCELLED_REASON = "cancelled by an operator"


@dataclass
class _Pending:
    request: meta.UpdateVideoStatusRequest
    force: bool


class Reporter:
    def __init__(self, metadata: MetadataClient, store: Store, interval: float = 1.0) -> None:
        self._metadata = metadata
        self._store = store
        self._interval = interval
        self._pending: dict[str, _Pending] = {}
        self._last_sent: dict[str, float] = {}
        self._last_stage: dict[str, str] = {}
        self._wake = asyncio.Event()

    # --- progress ------------------------------------------------------------------------------

    def progress(
        self,
        job_id: str,
        completed: int,
        total: int,
        stage: str,
        *,
        result: meta.ProcessingResult | None = None,
        force: bool = False,
    ) -> None:
        """Queue a PROCESSING update (the latest per job wins; a result is never dropped)."""
        request = meta.UpdateVideoStatusRequest(
            name=names.VIDEOS.name(job_id),
            status=VideoStatus.VIDEO_STATUS_PROCESSING,
            progress=Progress(completed_tasks=completed, total_tasks=total, stage=stage),
        )
        previous = self._pending.get(job_id)
        if result is not None:
            request.result.CopyFrom(result)
        elif previous is not None and previous.request.HasField("result"):
            request.result.CopyFrom(previous.request.result)
        force = force or result is not None or self._last_stage.get(job_id) != stage
        force = force or (previous is not None and previous.force)
        self._pending[job_id] = _Pending(request, force)
        self._wake.set()

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            due = [
                job_id
                for job_id, p in self._pending.items()
                if p.force or now - self._last_sent.get(job_id, 0.0) >= self._interval
            ]
            for job_id in due:
                pending = self._pending.pop(job_id, None)
                if pending is not None:
                    await self._send_progress(job_id, pending.request)
            wait = self._interval
            if self._pending:
                wait = min(
                    max(0.0, self._interval - (time.monotonic() - self._last_sent.get(j, 0.0)))
                    for j in self._pending
                )
            self._wake.clear()
            await wait_for_event(self._wake, max(wait, 0.01))

    async def _send_progress(self, job_id: str, request: meta.UpdateVideoStatusRequest) -> None:
        self._last_sent[job_id] = time.monotonic()
        self._last_stage[job_id] = request.progress.stage
        try:
            snapshot = await run_in_thread(self._store.get, job_id)
            if snapshot is None or snapshot.job.state not in dag.JOB_ACTIVE:
                return
            await self._metadata.update_status(request)
        except grpc.aio.AioRpcError as exc:
            log.info(
                "progress of videos/%s not reported: %s %s", job_id, exc.code().name, exc.details()
            )
        except Exception:
            log.warning("progress of videos/%s not reported", job_id, exc_info=True)

    # --- final states ------------------------------------------------------------------------

    async def final(self, job_id: str) -> bool:
        """Reports the job's terminal state; True once the Metadata service has it."""
        self._pending.pop(job_id, None)
        snapshot = await run_in_thread(self._store.get, job_id)
        if snapshot is None or snapshot.job.state not in dag.JOB_TERMINAL:
            return False
        request = final_request(snapshot)
        try:
            await self._metadata.update_status(request)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                log.warning(
                    "final status of videos/%s not reported yet: %s %s",
                    job_id,
                    code.name,
                    exc.details(),
                )
                return False
            # The video moved on (deleted, or already final): nothing left to tell.
            log.info("final status of videos/%s not applied: %s", job_id, exc.details())
        except Exception:
            log.warning("final status of videos/%s not reported yet", job_id, exc_info=True)
            return False
        await run_in_thread(self._store.mark_notified, job_id, snapshot.job.state)
        self._last_stage.pop(job_id, None)
        self._last_sent.pop(job_id, None)
        return True

    async def started(self, job_id: str, stage: str, completed: int = 0, total: int = 0) -> bool:
        """The video becomes PROCESSING (job created or retried); sent at once, not throttled.
        False if the Metadata service refused (for example the video is still UPLOADING)."""
        self._last_stage[job_id] = stage
        self._last_sent[job_id] = time.monotonic()
        try:
            await self._metadata.update_status(
                meta.UpdateVideoStatusRequest(
                    name=names.VIDEOS.name(job_id),
                    status=VideoStatus.VIDEO_STATUS_PROCESSING,
                    progress=Progress(completed_tasks=completed, total_tasks=total, stage=stage),
                )
            )
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "videos/%s not moved to PROCESSING: %s %s", job_id, exc.code().name, exc.details()
            )
            return False
        return True


def final_request(snapshot: Snapshot) -> meta.UpdateVideoStatusRequest:
    job = snapshot.job
    name = names.VIDEOS.name(job.id)
    if job.state == dag.JOB_SUCCEEDED:
        result = snapshot.final_result()
        if result is None:
            try:
                result = _assembled_again(snapshot)
            except (AssemblyError, ValueError) as exc:  # cannot happen: it was assembled before
                return meta.UpdateVideoStatusRequest(
                    name=name, status=VideoStatus.VIDEO_STATUS_FAILED, failure_reason=str(exc)
                )
        return meta.UpdateVideoStatusRequest(
            name=name,
            status=VideoStatus.VIDEO_STATUS_READY,
            progress=Progress(
                completed_tasks=job.total_tasks, total_tasks=job.total_tasks, stage=snapshot.stage()
            ),
            result=result,
        )
    reason = job.failure_reason or (
        CANCELLED_REASON if job.state == dag.JOB_CANCELLED else "transcoding failed"
    )
    return meta.UpdateVideoStatusRequest(
        name=name, status=VideoStatus.VIDEO_STATUS_FAILED, failure_reason=reason[:2000]
    )


def _assembled_again(snapshot: Snapshot) -> meta.ProcessingResult:
    """For a job that succeeded before the assemble task kept its result: the renditions are
    only known by assembling the final playlists again."""
    plan = snapshot.plan
    assert plan is not None
    assembled = final_playlists(
        snapshot.job.id, plan, snapshot.chunk_results(), snapshot.audio_result()
    )
    return processing_result(snapshot.job.id, plan, assembled, snapshot.poster_key())
