"""The transcode orchestrator end to end: a real gRPC server, a real Metadata service, SQLite
in tmp_path and SeaweedFS, driven by a FAKE worker that speaks the real worker protocol over a
real channel (it answers with synthetic results and writes tiny objects to the media bucket)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from streamify.core.config import TranscodeSettings
from streamify.core.errors import details_of
from streamify.core.queue import make_queue
from streamify.core.storage import make_s3_client
from streamify.transcode.orchestrator import app, dag, dispatch, reporter
from streamify.v1 import metadata_service_pb2 as meta
from streamify.v1 import transcode_service_pb2 as api
from streamify.v1 import transcode_service_pb2_grpc, worker_service_pb2_grpc
from streamify.v1 import worker_service_pb2 as wapi
from streamify.v1.events_pb2 import VideoUploadedEvent
from streamify.v1.video_pb2 import Video, VideoStatus
from tests.support.mesh import running_service
from tests.support.metadata import bearer, running_metadata, service_settings

pytestmark = pytest.mark.integration

SERVICE = bearer("operator", kind="service")
WORKER = bearer("worker", kind="service")
ALICE, BOB = bearer("alice"), bearer("bob")
SUCCEEDED, FAILED, CANCELLED, RUNNING = (
    api.JobState.JOB_STATE_SUCCEEDED,
    api.JobState.JOB_STATE_FAILED,
    api.JobState.JOB_STATE_CANCELLED,
    api.JobState.JOB_STATE_RUNNING,
)


# --- the fake worker ---------------------------------------------------------------------------


def clip_probe(seconds: float = 10.0, *, video: bool = True) -> wapi.ProbeResult:
    """A 640x360 30 fps clip with stereo AAC."""
    result = wapi.ProbeResult(
        format="mov,mp4,m4a,3gp,3g2,mj2",
        duration=dag.seconds(seconds),
        audio=wapi.AudioStreamInfo(codec="aac", sample_rate=48000, channels=2),
    )
    if video:
        result.video.CopyFrom(
            wapi.VideoStreamInfo(
                codec="h264", width=640, height=360, frame_rate=30.0, pixel_format="yuv420p"
            )
        )
    return result


def task_name(task_id: str) -> str:
    return task_id.rsplit("/", 1)[-1]


class FakeWorker:
    """Speaks TranscodeWorkerService.Connect like a real worker, with synthetic outputs."""

    def __init__(
        self,
        target: str,
        worker_id: str,
        s3: Any,
        *,
        slots: int = 2,
        probe: wapi.ProbeResult | None = None,
    ) -> None:
        self.target, self.worker_id, self.s3, self.slots = target, worker_id, s3, slots
        self.probe = probe or clip_probe()
        self.assignments: list[wapi.TaskAssignment] = []
        self.cancellations: list[str] = []
        self.hold: set[str] = set()  # task names answered only on release()
        self.hold_once: set[str] = set()  # held the first time only
        self.fail: dict[str, tuple[str, bool]] = {}  # task name -> (error, retryable)
        self.held: dict[str, wapi.TaskAssignment] = {}
        self.sent: list[str] = []  # kinds of messages this worker sent
        self.welcome: wapi.WorkerWelcome | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()

    def names(self) -> list[str]:
        return [task_name(a.task_id) for a in self.assignments]

    async def start(self) -> FakeWorker:
        self.channel = grpc.aio.insecure_channel(self.target)
        stub = worker_service_pb2_grpc.TranscodeWorkerServiceStub(self.channel)
        self.call = stub.Connect(metadata=WORKER)
        await self.send(
            wapi.ConnectRequest(
                hello=wapi.WorkerHello(
                    worker_id=self.worker_id,
                    slots=self.slots,
                    hostname="test",
                    encoders=["libx264"],
                )
            )
        )
        first = await self.call.read()
        assert first.WhichOneof("command") == "welcome"
        self.welcome = first.welcome
        self._reader = asyncio.create_task(self._read())
        return self

    async def send(self, message: wapi.ConnectRequest) -> None:
        async with self._lock:
            self.sent.append(message.WhichOneof("event"))
            await self.call.write(message)

    async def _read(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            while True:
                message = await self.call.read()
                if message is grpc.aio.EOF:
                    return
                if message.WhichOneof("command") == "assignment":
                    a = message.assignment
                    self.assignments.append(a)
                    name = task_name(a.task_id)
                    if name in self.hold or name in self.hold_once:
                        self.hold_once.discard(name)
                        self.held[name] = a
                    else:
                        self._spawn(self.answer(a))
                elif message.WhichOneof("command") == "cancellation":
                    self.cancellations.append(message.cancellation.task_id)
                    self.held.pop(task_name(message.cancellation.task_id), None)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def release(self, name: str) -> None:
        self.hold.discard(name)
        await self.answer(self.held.pop(name))

    async def heartbeat(self, claims: list[wapi.HeldLease] | None = None) -> None:
        """What it runs, with its lease ids like a real worker (or the `claims` given)."""
        if claims is None:
            claims = [
                wapi.HeldLease(task_id=a.task_id, lease_id=a.lease_id) for a in self.held.values()
            ]
        await self.send(
            wapi.ConnectRequest(
                heartbeat=wapi.WorkerHeartbeat(task_ids=[c.task_id for c in claims], leases=claims)
            )
        )

    async def answer(self, a: wapi.TaskAssignment) -> None:
        name = task_name(a.task_id)
        await self.send(
            wapi.ConnectRequest(
                progress=wapi.TaskProgress(task_id=a.task_id, lease_id=a.lease_id, fraction=0.5)
            )
        )
        if name in self.fail:
            error, retryable = self.fail[name]
            await self.send(
                wapi.ConnectRequest(
                    failure=wapi.TaskFailure(
                        task_id=a.task_id, lease_id=a.lease_id, error=error, retryable=retryable
                    )
                )
            )
            return
        result = await asyncio.to_thread(self.outputs, a)
        await self.send(wapi.ConnectRequest(result=result))

    def _put(self, bucket: str, key: str, size: int) -> None:
        self.s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=b"\0" * size,
            CacheControl="public, max-age=31536000, immutable",
        )

    def outputs(self, a: wapi.TaskAssignment) -> wapi.TaskResult:
        result = wapi.TaskResult(task_id=a.task_id, lease_id=a.lease_id, elapsed=dag.seconds(0.1))
        which = a.WhichOneof("spec")
        if which == "probe":
            assert a.probe.source.url.startswith("http") and "Signature" in a.probe.source.url
            result.probe.CopyFrom(self.probe)
        elif which == "video_chunk":
            spec = a.video_chunk
            seg = dag.to_seconds(spec.segment_duration)
            start, end = dag.to_seconds(spec.start), dag.to_seconds(spec.end)
            count = max(1, math.ceil((end - start) / seg - 1e-6))
            for r in spec.renditions:
                rc = result.video_chunk.renditions.add(
                    rendition_id=r.id,
                    codecs="avc1.64001e",
                    init_key=f"{spec.output.prefix}{r.id}/init.mp4",
                )
                self._put(spec.output.bucket, rc.init_key, 64)
                for k in range(count):
                    i = spec.first_segment_index + k
                    length = min(seg, end - (start + k * seg))
                    key = f"{spec.output.prefix}{r.id}/seg_{i:05d}.m4s"
                    size = int(r.bitrate * length / 8 / 1000)  # tiny: 1/1000 of the real size
                    self._put(spec.output.bucket, key, size)
                    rc.segments.add(index=i, key=key, duration=dag.seconds(length), size_bytes=size)
        elif which == "audio":
            spec = a.audio
            seg, duration = dag.to_seconds(spec.segment_duration), dag.to_seconds(spec.duration)
            result.audio.codecs, result.audio.init_key = (
                "mp4a.40.2",
                f"{spec.output.prefix}audio/init.mp4",
            )
            self._put(spec.output.bucket, result.audio.init_key, 64)
            for i in range(max(1, math.ceil(duration / seg - 1e-6))):
                length = min(seg, duration - i * seg)
                key = f"{spec.output.prefix}audio/seg_{i:05d}.m4s"
                self._put(spec.output.bucket, key, 16)
                result.audio.segments.add(
                    index=i, key=key, duration=dag.seconds(length), size_bytes=16
                )
        elif which == "poster":
            key = f"{a.poster.output.prefix}poster.jpg"
            self._put(a.poster.output.bucket, key, 100)
            result.poster.CopyFrom(wapi.PosterResult(key=key, width=640, height=360))
        return result

    async def disconnect(self) -> None:
        self.call.cancel()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        for task in list(self._tasks):
            task.cancel()
        await self.channel.close()


# --- the environment ----------------------------------------------------------------------------


async def wait_until(check: Callable[[], Awaitable[Any]], what: str, tries: int = 600) -> Any:
    """Polls `check` until it returns something truthy (a cap on tries, not a time limit)."""
    for _ in range(tries):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


@dataclass
class Orch:
    target: str
    jobs: transcode_service_pb2_grpc.TranscodeServiceStub
    channel: grpc.aio.Channel

    async def job(self, video_id: str, who=SERVICE) -> api.TranscodeJob:
        return await self.jobs.GetTranscodeJob(
            api.GetTranscodeJobRequest(name=f"transcodeJobs/{video_id}"), metadata=who
        )

    async def create(self, video_id: str, who=SERVICE) -> api.TranscodeJob:
        return await self.jobs.CreateTranscodeJob(
            api.CreateTranscodeJobRequest(video=f"videos/{video_id}"), metadata=who
        )

    async def wait_state(self, video_id: str, state: int) -> api.TranscodeJob:
        async def check():
            try:
                job = await self.job(video_id)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:  # not created yet
                    return None
                raise
            return job if job.state == state else None

        return await wait_until(check, f"job {video_id} {api.JobState.Name(state)}")

    def task(self, job: api.TranscodeJob, name: str) -> api.TranscodeTask:
        return next(t for t in job.tasks if t.id == name)

    async def wait_all_but(self, video_id: str, *running: str) -> api.TranscodeJob:
        """Until every task but `running` (and assemble) has SUCCEEDED."""

        async def check():
            job = await self.job(video_id)
            left = {t.id for t in job.tasks if t.state != dag.SUCCEEDED} - {"assemble"}
            return job if job.total_tasks and left == set(running) else None

        return await wait_until(check, f"every task of {video_id} but {running} succeeded")


@dataclass
class Env:
    settings: Any
    metadata: Any
    s3: Any
    workers: list[FakeWorker] = field(default_factory=list)

    def options(self, **overrides: Any) -> TranscodeSettings:
        values: dict[str, Any] = dict(
            orchestrator_id=f"orch-{uuid.uuid4().hex[:6]}",
            segments_per_chunk=1,
            sweep_interval_seconds=0.2,
            dispatch_poll_seconds=0.2,
            progress_interval_seconds=0.2,
        )
        values.update(overrides)
        return TranscodeSettings(**values)

    @contextlib.asynccontextmanager
    async def orchestrator(self, options: TranscodeSettings | None = None, settings=None):
        run = functools.partial(app.run, options=options or self.options())
        async with running_service(run, settings or self.settings) as target:
            channel = grpc.aio.insecure_channel(target)
            try:
                yield Orch(
                    target, transcode_service_pb2_grpc.TranscodeServiceStub(channel), channel
                )
            finally:
                await channel.close()

    async def worker(self, orch: Orch, worker_id: str | None = None, **kw: Any) -> FakeWorker:
        w = await FakeWorker(
            orch.target, worker_id or f"w-{uuid.uuid4().hex[:6]}", self.s3, **kw
        ).start()
        self.workers.append(w)
        return w

    async def uploaded_video(self, owner: str = "alice") -> str:
        """A video in status UPLOADED with its source in the uploads bucket."""
        video = await self.metadata.stub.CreateVideo(
            meta.CreateVideoRequest(
                video=Video(title="clip"), owner=f"users/{owner}", source_size_bytes=1000
            ),
            metadata=SERVICE,
        )
        await self.metadata.stub.UpdateVideoStatus(
            meta.UpdateVideoStatusRequest(
                name=video.name,
                status=VideoStatus.VIDEO_STATUS_UPLOADED,
                source_upload="uploads/upload1",
            ),
            metadata=SERVICE,
        )
        video_id = video.name.removeprefix("videos/")
        await asyncio.to_thread(
            self.s3.put_object,
            Bucket=self.settings.uploads_bucket,
            Key=f"sources/{video_id}/upload1",
            Body=b"\0" * 1000,
        )
        return video_id

    async def video(self, video_id: str) -> Video:
        return await self.metadata.stub.GetVideo(
            meta.GetVideoRequest(name=f"videos/{video_id}"), metadata=SERVICE
        )

    async def wait_video(self, video_id: str, status: int) -> Video:
        async def check():
            video = await self.video(video_id)
            return video if video.status == status else None

        return await wait_until(check, f"videos/{video_id} {VideoStatus.Name(status)}")

    def object(self, key: str) -> dict | None:
        try:
            return self.s3.get_object(Bucket=self.settings.media_bucket, Key=key)
        except self.s3.exceptions.NoSuchKey:
            return None


@pytest.fixture
async def env(tmp_path, seaweedfs):
    base = service_settings(
        data_dir=tmp_path,
        shutdown_grace_seconds=1.0,
        queue_max_deliveries=2,
        **seaweedfs.settings_overrides(),
    )
    async with running_metadata(base) as metadata:
        settings = base.model_copy(update={"metadata_target": metadata.target})
        e = Env(settings, metadata, make_s3_client(settings))
        try:
            yield e
        finally:
            for w in e.workers:
                with contextlib.suppress(Exception):
                    await w.disconnect()


def assignment_counts(*workers: FakeWorker, job: str | None = None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for w in workers:
        for a in w.assignments:
            if job is None or a.task_id.startswith(f"transcodeJobs/{job}/"):
                counts[a.task_id] = counts.get(a.task_id, 0) + 1
    return counts


# --- the tests -----------------------------------------------------------------------------------


async def test_a_job_runs_probe_then_chunks_audio_poster_then_ready(env):
    async with env.orchestrator() as orch:
        video_id = await env.uploaded_video()
        worker = await env.worker(orch, slots=3)
        assert worker.welcome.orchestrator_id and worker.welcome.heartbeat_interval.seconds > 0
        created = await orch.create(video_id)
        again = await orch.create(video_id)  # idempotent per video: one job
        assert created.name == again.name == f"transcodeJobs/{video_id}"
        job = await orch.wait_state(video_id, SUCCEEDED)

        # The DAG: probe first, then the plan's tasks, each run once, assembled at the end.
        names = worker.names()
        assert names[0] == "probe"
        assert sorted(names[1:]) == sorted(
            ["audio", "chunk-0000", "chunk-0001", "chunk-0002", "poster"]
        )
        assert [t.id for t in job.tasks] == [
            "probe",
            "audio",
            "chunk-0000",
            "chunk-0001",
            "chunk-0002",
            "poster",
            "assemble",
        ]
        assert all(t.state == dag.SUCCEEDED and t.attempts == 1 for t in job.tasks)
        assert job.completed_tasks == job.total_tasks == 7
        assert job.HasField("time_to_first_playable") and job.HasField("end_time")
        # Pushed, never polled: the worker only said hello and reported progress and results.
        assert set(worker.sent) == {"hello", "progress", "result"}
        assert worker.sent.count("result") == 6

        video = await env.wait_video(video_id, VideoStatus.VIDEO_STATUS_READY)
        # a private video's URLs carry its grant in the path (videos/{id}/grant.E.S/...)
        assert re.search(rf"/videos/{video_id}/grant\.[^/]+/master\.m3u8$", video.playback_url), (
            video.playback_url
        )
        assert re.search(rf"/videos/{video_id}/grant\.[^/]+/poster\.jpg$", video.poster_url), (
            video.poster_url
        )
        assert [r.id for r in video.renditions] == ["360p", "240p"]
        top = video.renditions[0]
        assert (top.width, top.height, top.frame_rate) == (640, 360, 30.0)
        assert top.codecs == "avc1.64001e,mp4a.40.2"
        assert top.bandwidth >= top.average_bandwidth > 0
        assert video.duration.seconds == 10

        master = env.object(f"videos/{video_id}/master.m3u8")
        assert master["ContentType"] == "application/vnd.apple.mpegurl"
        assert master["CacheControl"] == "public, max-age=60"
        text = master["Body"].read().decode()
        assert f"BANDWIDTH={top.bandwidth}," in text and "360p/index.m3u8" in text
        media = env.object(f"videos/{video_id}/360p/index.m3u8")["Body"].read().decode()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in media and "#EXT-X-ENDLIST" in media
        assert media.count("#EXTINF") == 3
        audio = env.object(f"videos/{video_id}/audio/index.m3u8")["Body"].read().decode()
        assert audio.count("#EXTINF") == 3 and "#EXT-X-ENDLIST" in audio


async def test_job_control_permissions(env):
    async with env.orchestrator() as orch:
        video_id = await env.uploaded_video(owner="alice")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await orch.create(video_id, who=ALICE)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        await orch.create(video_id)
        assert (await orch.job(video_id, who=ALICE)).name == f"transcodeJobs/{video_id}"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await orch.job(video_id, who=BOB)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await orch.jobs.CancelTranscodeJob(
                api.CancelTranscodeJobRequest(name=f"transcodeJobs/{video_id}"), metadata=ALICE
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # the owner may retry her own job (it is not FAILED yet: a precondition, not a permission);
        # another user learns nothing about it
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await orch.jobs.RetryTranscodeJob(
                api.RetryTranscodeJobRequest(name=f"transcodeJobs/{video_id}"), metadata=ALICE
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await orch.jobs.RetryTranscodeJob(
                api.RetryTranscodeJobRequest(name=f"transcodeJobs/{video_id}"), metadata=BOB
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        listed = await orch.jobs.ListTranscodeJobs(api.ListTranscodeJobsRequest(), metadata=BOB)
        assert not listed.jobs
        # Workers must be services.
        stub = worker_service_pb2_grpc.TranscodeWorkerServiceStub(orch.channel)
        call = stub.Connect(metadata=ALICE)
        await call.write(wapi.ConnectRequest(hello=wapi.WorkerHello(worker_id="x", slots=1)))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # A service token opens only what that service does: the worker's cannot run jobs, the
        # gateway's or Upload's cannot connect as a worker.
        for who in (bearer("worker", kind="service"), bearer("gateway", kind="service")):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await orch.job(video_id, who=who)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        call = stub.Connect(metadata=bearer("upload", kind="service"))
        await call.write(wapi.ConnectRequest(hello=wapi.WorkerHello(worker_id="x", slots=1)))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # A video without a source, and one still uploading, cannot be submitted.
        missing = await env.metadata.stub.CreateVideo(
            meta.CreateVideoRequest(video=Video(title="no source"), owner="users/alice"),
            metadata=SERVICE,
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await orch.jobs.CreateTranscodeJob(
                api.CreateTranscodeJobRequest(video=missing.name), metadata=SERVICE
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "still being uploaded" in err.value.details()


async def test_a_job_reads_the_videos_own_upload_never_another_object_under_its_prefix(env):
    async with env.orchestrator() as orch:
        video_id = await env.uploaded_video()  # records uploads/upload1
        decoy = f"sources/{video_id}/zz-newer-decoy"
        await asyncio.to_thread(
            env.s3.put_object, Bucket=env.settings.uploads_bucket, Key=decoy, Body=b"\1" * 99
        )
        await asyncio.to_thread(
            env.s3.delete_object,
            Bucket=env.settings.uploads_bucket,
            Key=f"sources/{video_id}/upload1",
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await orch.create(video_id)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert details_of(err.value)[0].reason == "SOURCE_MISSING"
        assert "uploads/upload1" in err.value.details()
        # a video that records no upload is refused, whatever lies under its prefix
        bare = await env.metadata.stub.CreateVideo(
            meta.CreateVideoRequest(video=Video(title="no upload"), owner="users/alice"),
            metadata=SERVICE,
        )
        await env.metadata.stub.UpdateVideoStatus(
            meta.UpdateVideoStatusRequest(name=bare.name, status=VideoStatus.VIDEO_STATUS_UPLOADED),
            metadata=SERVICE,
        )
        bare_id = bare.name.removeprefix("videos/")
        await asyncio.to_thread(
            env.s3.put_object,
            Bucket=env.settings.uploads_bucket,
            Key=f"sources/{bare_id}/anything",
            Body=b"\0" * 1000,
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await orch.create(bare_id)
        assert details_of(err.value)[0].reason == "SOURCE_MISSING"


async def test_list_pages_through_jobs_newest_first(env):
    async with env.orchestrator() as orch:
        ids = [await env.uploaded_video() for _ in range(3)]
        for video_id in ids:
            await orch.create(video_id)
        seen, token = [], ""
        while True:
            page = await orch.jobs.ListTranscodeJobs(
                api.ListTranscodeJobsRequest(page_size=2, page_token=token), metadata=SERVICE
            )
            seen += [j.name for j in page.jobs]
            token = page.next_page_token
            if not token:
                break
        assert seen == [f"transcodeJobs/{i}" for i in reversed(ids)]
        mine = await orch.jobs.ListTranscodeJobs(api.ListTranscodeJobsRequest(), metadata=ALICE)
        assert len(mine.jobs) == 3


async def test_the_uploaded_event_on_the_queue_creates_the_job_once(env):
    queue = make_queue(env.settings)
    try:
        async with env.orchestrator() as orch:
            await env.worker(orch, slots=4)
            video_id = await env.uploaded_video()
            event = VideoUploadedEvent(
                video=f"videos/{video_id}",
                owner="users/alice",
                bucket=env.settings.uploads_bucket,
                key=f"sources/{video_id}/upload1",
                size_bytes=1000,
                content_type="video/mp4",
            )
            await queue.publish(video_id, event.SerializeToString())
            await queue.publish(video_id, event.SerializeToString())  # at-least-once: twice
            await queue.publish("poison", b"\xff\xff not a protobuf")
            job = await orch.wait_state(video_id, SUCCEEDED)
            assert all(t.attempts == 1 for t in job.tasks)
            await env.wait_video(video_id, VideoStatus.VIDEO_STATUS_READY)

            async def dead():
                return [d for d in await queue.dead_letters() if d.key == "poison"]

            assert await wait_until(dead, "the poison message is dead-lettered")
    finally:
        await queue.close()


async def test_a_worker_that_disconnects_mid_task_loses_it_to_another(env):
    async with env.orchestrator() as orch:
        video_id = await env.uploaded_video()
        first = await env.worker(orch, slots=5)
        first.hold.add("chunk-0001")
        await orch.create(video_id)

        await orch.wait_all_but(video_id, "chunk-0001")
        assert "chunk-0001" in first.held
        await first.disconnect()
        second = await env.worker(orch, slots=2)
        job = await orch.wait_state(video_id, SUCCEEDED)
        assert "chunk-0001" in second.names()
        assert orch.task(job, "chunk-0001").attempts == 2
        assert "chunk-0000" not in second.names()  # finished work is not redone
        await env.wait_video(video_id, VideoStatus.VIDEO_STATUS_READY)


async def test_an_orchestrator_restart_resumes_the_job_without_rerunning_finished_tasks(env):
    options = env.options()
    worker_id = "steady-worker"
    async with env.orchestrator(options) as orch:
        video_id = await env.uploaded_video()
        worker = await env.worker(orch, worker_id, slots=5)
        worker.hold.add("chunk-0002")
        await orch.create(video_id)

        await orch.wait_all_but(video_id, "chunk-0002")
        held = worker.held["chunk-0002"]
    # The orchestrator is gone (its streams ended); the worker still holds its task.
    await worker.disconnect()
    async with env.orchestrator(env.options()) as orch:
        again = await env.worker(orch, worker_id, slots=5)
        again.held["chunk-0002"] = held
        await again.heartbeat()  # the new replica adopts the lease the worker still holds
        await again.release("chunk-0002")  # its result names the lease from before the restart
        job = await orch.wait_state(video_id, SUCCEEDED)
        assert again.assignments == []  # nothing was re-run
        assert all(t.attempts == 1 for t in job.tasks)
        await env.wait_video(video_id, VideoStatus.VIDEO_STATUS_READY)


async def test_a_worker_naming_another_workers_id_takes_over_none_of_its_leases(env):
    """Every worker shares the `worker` credential, so its id is only a claim: a stream that
    names a victim's id and its task ids (guessable) but not the lease ids adopts nothing, and
    its disconnect releases nothing; the victim's result still counts."""
    worker_id = "victim-worker"
    async with env.orchestrator(env.options()) as orch:
        video_id = await env.uploaded_video()
        victim = await env.worker(orch, worker_id, slots=5)
        victim.hold.add("chunk-0002")
        await orch.create(video_id)
        await orch.wait_all_but(video_id, "chunk-0002")
        held = victim.held["chunk-0002"]
    await victim.disconnect()  # its replica went away; the victim keeps running the task
    async with env.orchestrator(env.options()) as orch:
        thief = await env.worker(orch, worker_id, slots=5)
        for guess in ("", "0" * 32, held.lease_id[:-1] + "x"):
            await thief.heartbeat([wapi.HeldLease(task_id=held.task_id, lease_id=guess)])
        await thief.disconnect()  # a release of what it adopted would fail the task
        again = await env.worker(orch, worker_id, slots=5)
        again.held["chunk-0002"] = held
        await again.heartbeat()
        await again.release("chunk-0002")
        job = await orch.wait_state(video_id, SUCCEEDED)
        assert thief.assignments == [] and again.assignments == []
        assert all(t.attempts == 1 for t in job.tasks)


async def test_a_restart_requeues_tasks_whose_worker_never_comes_back(env):
    async with env.orchestrator(env.options(lease_seconds=1.0)) as orch:
        video_id = await env.uploaded_video()
        worker = await env.worker(orch, slots=5)
        worker.hold.add("chunk-0001")
        await orch.create(video_id)

        await orch.wait_all_but(video_id, "chunk-0001")
        done_before = sorted(n for n in worker.names() if n != "chunk-0001")
    await worker.disconnect()
    async with env.orchestrator(env.options(lease_seconds=1.0)) as orch:
        fresh = await env.worker(orch, slots=5)
        job = await orch.wait_state(video_id, SUCCEEDED)
        assert "chunk-0001" in fresh.names()
        assert not set(fresh.names()) & set(done_before)
        assert orch.task(job, "chunk-0001").attempts == 2


async def test_a_task_that_always_fails_fails_the_job_after_bounded_attempts(env):
    async with env.orchestrator(env.options(max_attempts=3)) as orch:
        video_id = await env.uploaded_video()
        worker = await env.worker(orch, slots=2)
        worker.fail["chunk-0001"] = ("the encoder crashed", True)
        await orch.create(video_id)
        job = await orch.wait_state(video_id, FAILED)
        assert worker.names().count("chunk-0001") == 3
        assert orch.task(job, "chunk-0001").attempts == 3
        assert orch.task(job, "chunk-0001").state == dag.FAILED
        assert job.failure_reason == "chunk-0001 failed 3 times; last error: the encoder crashed"

        video = await env.wait_video(video_id, VideoStatus.VIDEO_STATUS_FAILED)
        assert video.failure_reason == job.failure_reason


async def test_a_non_retryable_failure_fails_the_job_at_once(env):
    async with env.orchestrator() as orch:
        video_id = await env.uploaded_video()
        worker = await env.worker(orch)
        worker.fail["probe"] = ("the file is not a video: it is a PDF document", False)
        await orch.create(video_id)
        job = await orch.wait_state(video_id, FAILED)
        assert job.failure_reason == "the file is not a video: it is a PDF document"
        assert worker.names() == ["probe"]
        video = await env.wait_video(video_id, VideoStatus.VIDEO_STATUS_FAILED)
        assert video.failure_reason == job.failure_reason


async def test_a_source_without_a_video_stream_fails_with_the_planning_reason(env):
    async with env.orchestrator() as orch:
        video_id = await env.uploaded_video()
        await env.worker(orch, probe=clip_probe(video=False))
        await orch.create(video_id)
        job = await orch.wait_state(video_id, FAILED)
        assert job.failure_reason == "the file is not a video: no video stream found"
        assert [t.id for t in job.tasks] == ["probe"]
        video = await env.wait_video(video_id, VideoStatus.VIDEO_STATUS_FAILED)
        assert video.failure_reason == job.failure_reason


async def test_cancel_stops_running_tasks_and_retry_keeps_what_succeeded(env):
    async with env.orchestrator() as orch:
        video_id = await env.uploaded_video()
        worker = await env.worker(orch, slots=5)
        worker.hold.add("chunk-0001")
        await orch.create(video_id)

        async def holding():
            job = await orch.job(video_id)
            done = {t.id for t in job.tasks if t.state == dag.SUCCEEDED}
            return "chunk-0001" in worker.held and {"chunk-0000", "audio", "poster"} <= done

        await wait_until(holding, "chunk-0001 running, the rest done")
        name = f"transcodeJobs/{video_id}"
        job = await orch.jobs.CancelTranscodeJob(
            api.CancelTranscodeJobRequest(name=name, request_id="c1"), metadata=SERVICE
        )
        assert job.state == CANCELLED and job.failure_reason == "cancelled by an operator"
        assert orch.task(job, "chunk-0001").state == dag.CANCELLED

        async def cancelled():
            return f"{name}/tasks/chunk-0001" in worker.cancellations

        await wait_until(cancelled, "the worker is told to stop chunk-0001")
        video = await env.wait_video(video_id, VideoStatus.VIDEO_STATUS_FAILED)
        assert video.failure_reason == "cancelled by an operator"

        worker.hold.clear()
        before = worker.names()
        job = await orch.jobs.RetryTranscodeJob(
            api.RetryTranscodeJobRequest(name=name, request_id="r1"), metadata=SERVICE
        )
        assert job.state == RUNNING
        assert (await env.video(video_id)).status in (
            VideoStatus.VIDEO_STATUS_PROCESSING,
            VideoStatus.VIDEO_STATUS_READY,
        )
        job = await orch.wait_state(video_id, SUCCEEDED)
        rerun = worker.names()[len(before) :]
        assert rerun == ["chunk-0001"]  # the tasks that had succeeded were kept
        await env.wait_video(video_id, VideoStatus.VIDEO_STATUS_READY)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await orch.jobs.RetryTranscodeJob(
                api.RetryTranscodeJobRequest(name=name), metadata=SERVICE
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_an_expired_lease_requeues_the_task(env):
    async with env.orchestrator(env.options(lease_seconds=1.0)) as orch:
        video_id = await env.uploaded_video()
        silent = await env.worker(orch, slots=1)
        silent.hold_once.add("probe")  # takes it, then neither heartbeats nor answers
        await orch.create(video_id)

        async def taken():
            return "probe" in silent.held

        await wait_until(taken, "the silent worker takes the probe")
        busy = await env.worker(orch, slots=3)
        job = await orch.wait_state(video_id, SUCCEEDED)
        task_id = f"transcodeJobs/{video_id}/tasks/probe"
        assert assignment_counts(silent, busy)[task_id] == 2
        assert orch.task(job, "probe").attempts == 2
        assert task_id in silent.cancellations
        await env.wait_video(video_id, VideoStatus.VIDEO_STATUS_READY)


async def test_playback_starts_before_the_last_chunk_is_done(env):
    async with env.orchestrator() as orch:
        video_id = await env.uploaded_video()
        worker = await env.worker(orch, slots=5)
        worker.hold.add("chunk-0002")
        await orch.create(video_id)

        async def playable():
            video = await env.video(video_id)
            return video if video.playback_url else None

        video = await wait_until(playable, "a playback URL while chunk-0002 runs")
        assert video.status == VideoStatus.VIDEO_STATUS_PROCESSING
        assert video.progress.total_tasks == 7 and video.progress.stage == "encoding"
        assert [r.id for r in video.renditions] == ["360p", "240p"]
        assert "chunk-0002" in worker.held
        master = env.object(f"videos/{video_id}/master.m3u8")
        assert master is not None and master["CacheControl"] == "public, max-age=2"

        async def two_chunks():
            body = env.object(f"videos/{video_id}/360p/index.m3u8")["Body"].read().decode()
            return body if body.count("#EXTINF") == 2 else None

        media = await wait_until(two_chunks, "the leading run of two chunks is published")
        assert "#EXT-X-PLAYLIST-TYPE:EVENT" in media and "#EXT-X-ENDLIST" not in media
        audio = env.object(f"videos/{video_id}/audio/index.m3u8")["Body"].read().decode()
        assert audio.count("#EXTINF") == 2
        job = await orch.job(video_id)
        assert job.HasField("time_to_first_playable") and job.state == RUNNING

        await worker.release("chunk-0002")
        await orch.wait_state(video_id, SUCCEEDED)
        media = env.object(f"videos/{video_id}/360p/index.m3u8")["Body"].read().decode()
        assert media.count("#EXTINF") == 3 and "#EXT-X-ENDLIST" in media


class CountingS3:
    """The orchestrator's S3 client, recording each object it writes as (key, Cache-Control)."""

    def __init__(self, real: Any, writes: list[tuple[str, str]]) -> None:
        self._real, self._writes = real, writes

    def put_object(self, **kw: Any) -> Any:
        self._writes.append((kw["Key"], kw.get("CacheControl", "")))
        return self._real.put_object(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


async def test_the_final_playlists_are_assembled_and_written_once(env, monkeypatch):
    """The last chunk finishing last used to mean three assemblies of the whole ladder: EVENT
    playlists of every chunk, the final ones, and again for the READY report."""
    writes: list[tuple[str, str]] = []
    finals: list[str] = []
    make_s3 = app.make_s3_client
    monkeypatch.setattr(app, "make_s3_client", lambda s: CountingS3(make_s3(s), writes))
    for module in (dispatch, reporter):
        real = module.final_playlists

        def counting(video_id, *args, _real=real):
            finals.append(video_id)
            return _real(video_id, *args)

        monkeypatch.setattr(module, "final_playlists", counting)
    async with env.orchestrator() as orch:
        video_id = await env.uploaded_video()
        worker = await env.worker(orch, slots=5)
        worker.hold.add("chunk-0002")
        await orch.create(video_id)
        await orch.wait_all_but(video_id, "chunk-0002")
        await worker.release("chunk-0002")
        await orch.wait_state(video_id, SUCCEEDED)
        video = await env.wait_video(video_id, VideoStatus.VIDEO_STATUS_READY)
    assert [r.id for r in video.renditions] == ["360p", "240p"]
    assert finals == [video_id]
    masters = [cache for key, cache in writes if key == f"videos/{video_id}/master.m3u8"]
    # EVENT playlists while chunk-0002 runs (for one or two chunks), then the final ones once.
    assert masters[-1] == "public, max-age=60" and masters.count("public, max-age=60") == 1
    assert 1 <= len(masters) - 1 <= 2 and set(masters[:-1]) == {"public, max-age=2"}


async def test_a_job_past_its_deadline_fails_instead_of_staying_processing(env):
    async with env.orchestrator(env.options(job_deadline_seconds=1.0)) as orch:
        video_id = await env.uploaded_video()
        worker = await env.worker(orch, slots=5)
        worker.hold.add("chunk-0001")  # heartbeats keep its lease, but the job is out of time
        await orch.create(video_id)
        await orch.wait_all_but(video_id, "chunk-0001")
        await worker.heartbeat()
        job = await orch.wait_state(video_id, FAILED)
        assert job.failure_reason == "transcoding took longer than the limit of 1 s"
        assert orch.task(job, "chunk-0001").state == dag.CANCELLED
        video = await env.wait_video(video_id, VideoStatus.VIDEO_STATUS_FAILED)
        assert video.failure_reason == job.failure_reason

        async def told():
            return f"transcodeJobs/{video_id}/tasks/chunk-0001" in worker.cancellations

        await wait_until(told, "the worker is told to stop")
