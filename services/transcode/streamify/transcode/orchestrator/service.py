"""TranscodeService: job control for operators and services.

* CreateTranscodeJob (services only) is idempotent per video (job id = video id). The source
  is the sealed object of the upload the video records (`Video.source_upload`, its key from
  `streamify.core.storage_keys`), never whatever else lies under the video's prefix. The video
  must exist and its upload be complete (status UPLOADED, or later for a re-submission).
* Get/List: services see every job; a user sees the jobs of their own videos (others' are
  NOT_FOUND / not listed).
* Cancel: services only. Retry: a service or the video's owner (the page's Retry button); anyone
  else gets NOT_FOUND, as for a job they cannot read.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from streamify.core import errors, names, storage_keys
from streamify.core.auth import Principal, current_principal
from streamify.core.clock import timestamp_of
from streamify.core.db import run_in_thread
from streamify.core.metadata_client import MetadataClient
from streamify.core.storage import object_size
from streamify.transcode.orchestrator import dag
from streamify.transcode.orchestrator.job_control import JobControl
from streamify.transcode.orchestrator.store import Conflict, Snapshot
from streamify.v1 import transcode_service_pb2 as api
from streamify.v1 import transcode_service_pb2_grpc
from streamify.v1.video_pb2 import VideoStatus

DEFAULT_PAGE_SIZE = 20
_TOKEN = re.compile(rf"(\d+):(\d+):({names.ID})")


def _job_id(name: str) -> str:
    job_id = names.TRANSCODE_JOBS.id_of(name)
    if job_id is None:
        raise errors.not_found(name)
    return job_id


def to_proto(snapshot: Snapshot) -> api.TranscodeJob:
    job = snapshot.job
    out = api.TranscodeJob(
        name=names.TRANSCODE_JOBS.name(job.id),
        video=names.VIDEOS.name(job.id),
        state=api.JobState.ValueType(job.state),
        failure_reason=job.failure_reason,
        completed_tasks=job.completed_tasks,
        total_tasks=job.total_tasks if job.plan else 0,
        create_time=timestamp_of(job.create_time_us),
        update_time=timestamp_of(job.update_time_us),
    )
    if job.end_time_us:
        out.end_time.CopyFrom(timestamp_of(job.end_time_us))
    if job.first_playable_us:
        d = Duration()
        d.FromMicroseconds(max(0, job.first_playable_us - job.create_time_us))
        out.time_to_first_playable.CopyFrom(d)
    for t in snapshot.tasks:
        out.tasks.append(
            api.TranscodeTask(
                id=t.name,
                kind=api.TaskKind.ValueType(t.kind),
                state=api.TaskState.ValueType(t.state),
                attempts=t.attempts,
                worker=t.worker_id if t.state == dag.RUNNING else "",
                last_error=t.last_error,
                chunk_index=t.chunk_index,
                progress=t.progress,
            )
        )
    return out


class TranscodeService(transcode_service_pb2_grpc.TranscodeServiceServicer):
    def __init__(
        self, *, orchestrator: JobControl, metadata: MetadataClient, s3: Any, uploads_bucket: str
    ) -> None:
        self._jobs = orchestrator
        self._metadata = metadata
        self._s3 = s3
        self._uploads_bucket = uploads_bucket

    async def CreateTranscodeJob(
        self,
        request: api.CreateTranscodeJobRequest,
        context: grpc.aio.ServicerContext[api.CreateTranscodeJobRequest, api.TranscodeJob],
    ) -> api.TranscodeJob:
        self._service()
        video_id = names.VIDEOS.id_of(request.video)
        if video_id is None:
            raise errors.invalid_argument(
                [("video", f"must be a video name like `videos/abc123`, got {request.video!r}")]
            )
        existing = await self._jobs.get_job(video_id)
        if existing is not None:
            return to_proto(existing)
        try:
            video = await self._metadata.get_video(request.video)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise errors.not_found(request.video) from None
            raise errors.unavailable(
                f"the Metadata service could not be asked: {exc.details()}"
            ) from None
        if video.status == VideoStatus.VIDEO_STATUS_UPLOADING:
            raise errors.failed_precondition(
                f"{request.video} is still being uploaded; complete the upload first",
                reason="VIDEO_NOT_UPLOADED",
            )
        upload_id = names.UPLOADS.id_of(video.source_upload)
        if upload_id is None:
            raise errors.failed_precondition(
                f"{request.video} records no completed upload to transcode; upload the file again",
                reason="SOURCE_MISSING",
            )
        key = storage_keys.source_key(video_id, upload_id)
        size = await run_in_thread(object_size, self._s3, self._uploads_bucket, key)
        if size is None:
            raise errors.failed_precondition(
                f"the source of {request.video} ({video.source_upload}) is missing from "
                f"s3://{self._uploads_bucket}/{key}; upload the file again",
                reason="SOURCE_MISSING",
            )
        snapshot = await self._jobs.create_job(
            video_id, video.owner, self._uploads_bucket, key, size
        )
        return to_proto(snapshot)

    async def GetTranscodeJob(
        self,
        request: api.GetTranscodeJobRequest,
        context: grpc.aio.ServicerContext[api.GetTranscodeJobRequest, api.TranscodeJob],
    ) -> api.TranscodeJob:
        principal = current_principal()
        return to_proto(await self._readable(request.name, principal))

    async def ListTranscodeJobs(
        self,
        request: api.ListTranscodeJobsRequest,
        context: grpc.aio.ServicerContext[
            api.ListTranscodeJobsRequest, api.ListTranscodeJobsResponse
        ],
    ) -> api.ListTranscodeJobsResponse:
        principal = current_principal()
        owner = None if principal.is_service else principal.user_name
        after = None
        if request.page_token:
            after = self._parse_token(request.page_token, request.state)
        size = request.page_size or DEFAULT_PAGE_SIZE
        page = await self._jobs.list_jobs(
            state=request.state, owner=owner, limit=size + 1, after=after
        )
        more = len(page) > size
        page = page[:size]
        token = ""
        if more:
            last = page[-1].job
            raw = f"{last.create_time_us}:{request.state}:{last.id}".encode()
            token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return api.ListTranscodeJobsResponse(
            jobs=[to_proto(s) for s in page], next_page_token=token
        )

    @staticmethod
    def _parse_token(token: str, state: int) -> tuple[int, str]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            raw = ""
        match = _TOKEN.fullmatch(raw)
        if match is None:
            raise errors.invalid_argument([("page_token", "is not a token this server issued")])
        if int(match.group(2)) != state:
            raise errors.invalid_argument(
                [("page_token", "was issued for a different `state`; start again without it")]
            )
        return int(match.group(1)), match.group(3)

    async def CancelTranscodeJob(
        self,
        request: api.CancelTranscodeJobRequest,
        context: grpc.aio.ServicerContext[api.CancelTranscodeJobRequest, api.TranscodeJob],
    ) -> api.TranscodeJob:
        self._service()
        job_id = _job_id(request.name)
        try:
            return to_proto(await self._jobs.cancel_job(job_id, request.request_id))
        except KeyError:
            raise errors.not_found(request.name) from None
        except Conflict as exc:
            raise errors.failed_precondition(exc.message, exc.reason) from None

    async def RetryTranscodeJob(
        self,
        request: api.RetryTranscodeJobRequest,
        context: grpc.aio.ServicerContext[api.RetryTranscodeJobRequest, api.TranscodeJob],
    ) -> api.TranscodeJob:
        await self._readable(request.name, current_principal())  # a service, or the video's owner
        job_id = _job_id(request.name)
        try:
            return to_proto(await self._jobs.retry_job(job_id, request.request_id))
        except KeyError:
            raise errors.not_found(request.name) from None
        except Conflict as exc:
            raise errors.failed_precondition(exc.message, exc.reason) from None

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _service() -> Principal:
        principal = current_principal()
        if not principal.is_service:
            raise errors.permission_denied(
                "only Streamify services may create, cancel or retry transcode jobs"
            )
        return principal

    async def _readable(self, name: str, principal: Principal) -> Snapshot:
        snapshot = await self._jobs.get_job(_job_id(name))
        if snapshot is None or not (
            principal.is_service or snapshot.job.owner == principal.user_name
        ):
            raise errors.not_found(name)
        return snapshot
