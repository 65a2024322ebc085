"""The transcode worker against a FAKE orchestrator (a real grpc.aio server built with
``streamify.core.server.serve``) and the real SeaweedFS holding a tiny test clip.

The fake orchestrator welcomes every worker, records everything the worker sends and pushes
whatever a test tells it to. Tasks that must still be running when the test acts on them read
their source from a "stalled" URL: a socket that listens but never answers, so the child
process sits in FFmpeg's open until it is cancelled or killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import pytest

from streamify.core.auth import current_principal
from streamify.core.config import Settings
from streamify.core.server import ServiceRegistration, serve
from streamify.core.storage import make_s3_client, s3_credentials
from streamify.transcode.orchestrator import task_urls
from streamify.transcode.worker import convert as conv
from streamify.transcode.worker.main import Worker, _hold_lock, sweep_work_dirs
from streamify.v1 import worker_service_pb2 as pb
from streamify.v1 import worker_service_pb2_grpc as pb_grpc
from tests.support import clips
from tests.support.keys import SECRET_SETTINGS, signing_keys_of
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

HEARTBEAT = 0.2  # seconds, set by the fake orchestrator's welcome
WAIT = 180.0  # bound of every wait loop: a guard against hangs, not a speed requirement
FPS = 30
CLIP_SECONDS = 2.0
SEGMENT = 1.0


# --- the fake orchestrator -----------------------------------------------------------------


@dataclass
class Session:
    """One worker stream as the fake orchestrator sees it."""

    hello: pb.WorkerHello
    principal: object
    received: list[tuple[float, pb.ConnectRequest]] = field(default_factory=list)
    commands: asyncio.Queue = field(default_factory=asyncio.Queue)
    ended: bool = False

    def assign(self, task_id: str | None = None, **spec) -> pb.TaskAssignment:
        assignment = pb.TaskAssignment(
            task_id=task_id or f"transcodeJobs/j/tasks/{uuid.uuid4().hex[:8]}",
            lease_id=uuid.uuid4().hex,
            attempt=1,
            **spec,
        )
        self.commands.put_nowait(pb.ConnectResponse(assignment=assignment))
        return assignment

    def cancel(self, task_id: str) -> None:
        self.commands.put_nowait(
            pb.ConnectResponse(cancellation=pb.TaskCancellation(task_id=task_id, reason="test"))
        )

    def close(self) -> None:
        """End the stream from the server side (the handler returns, status OK)."""
        self.commands.put_nowait(None)

    def events(self, kind: str) -> list[tuple[float, object]]:
        return [(t, getattr(m, kind)) for t, m in self.received if m.WhichOneof("event") == kind]

    def outcome(self, task_id: str) -> pb.TaskResult | pb.TaskFailure | None:
        for _, message in self.received:
            kind = message.WhichOneof("event")
            if kind in ("result", "failure") and getattr(message, kind).task_id == task_id:
                return getattr(message, kind)
        return None

    def heartbeats(self) -> list[list[str]]:
        return [list(h.task_ids) for _, h in self.events("heartbeat")]


class FakeOrchestrator(pb_grpc.TranscodeWorkerServiceServicer):
    def __init__(self) -> None:
        self.sessions: list[Session] = []

    async def Connect(self, request_iterator, context) -> None:
        first = await anext(aiter(request_iterator))
        assert first.WhichOneof("event") == "hello", first
        session = Session(hello=first.hello, principal=current_principal())
        await context.write(
            pb.ConnectResponse(
                welcome=pb.WorkerWelcome(
                    orchestrator_id="fake-orchestrator",
                    heartbeat_interval=conv.duration(HEARTBEAT),
                )
            )
        )
        self.sessions.append(session)

        async def pump() -> None:
            async for message in request_iterator:
                session.received.append((time.monotonic(), message))

        reader = asyncio.create_task(pump())
        try:
            while True:
                command = await session.commands.get()
                if command is None:
                    return
                await context.write(command)
        finally:
            session.ended = True
            reader.cancel()


@dataclass
class Orchestrator:
    port: int
    servicer: FakeOrchestrator
    stop: asyncio.Event
    task: asyncio.Task

    async def shutdown(self) -> None:
        self.stop.set()
        await self.task


async def start_orchestrator(tmp_path: Path, port: int) -> Orchestrator:
    settings = Settings(
        grpc_host="127.0.0.1",
        grpc_port=port,
        **SECRET_SETTINGS,
        data_dir=tmp_path,
        shutdown_grace_seconds=0.5,
        log_format="text",
    )
    servicer = FakeOrchestrator()
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    registration = ServiceRegistration(
        name="streamify.v1.TranscodeWorkerService",
        add_to_server=pb_grpc.add_TranscodeWorkerServiceServicer_to_server,
        servicer=servicer,
    )
    task = asyncio.create_task(
        serve(settings, [registration], on_ready=ready.set_result, stop_event=stop)
    )
    await ready
    return Orchestrator(port, servicer, stop, task)


async def until(predicate: Callable[[], object], what: str) -> object:
    """Poll ``predicate`` until it is truthy (bounded by WAIT, a guard against hangs)."""
    deadline = time.monotonic() + WAIT
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


def process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # exited, not yet reaped
    except FileNotFoundError:
        return True


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def storage_settings(seaweedfs, tmp_path_factory) -> Settings:
    return Settings(
        **seaweedfs.settings_overrides(),
        **SECRET_SETTINGS,
        data_dir=tmp_path_factory.mktemp("worker-data"),
        log_format="text",
    )


@pytest.fixture(scope="module")
def s3(storage_settings):
    return make_s3_client(storage_settings)


def _upload(s3, settings: Settings, path: Path) -> pb.SourceRef:
    key = f"raw/{uuid.uuid4().hex}/{path.name}"
    s3.upload_file(str(path), settings.uploads_bucket, key)
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": settings.uploads_bucket, "Key": key}, ExpiresIn=3600
    )
    return pb.SourceRef(
        bucket=settings.uploads_bucket, key=key, url=url, size_bytes=path.stat().st_size
    )


@pytest.fixture(scope="module")
def source(s3, storage_settings, tmp_path_factory) -> pb.SourceRef:
    """A 2 s 320x180 30 fps H.264 + AAC clip in the uploads bucket, with a pre-signed GET URL."""
    path = clips.make_clip(
        tmp_path_factory.mktemp("clip") / "clip.mp4",
        width=320,
        height=180,
        fps=FPS,
        duration=CLIP_SECONDS,
    )
    return _upload(s3, storage_settings, path)


@pytest.fixture(scope="module")
def garbage(s3, storage_settings, tmp_path_factory) -> pb.SourceRef:
    path = clips.random_bytes_file(tmp_path_factory.mktemp("garbage") / "upload.mp4")
    return _upload(s3, storage_settings, path)


@pytest.fixture(scope="module")
def stalled() -> pb.SourceRef:
    """A URL whose server accepts connections and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    yield pb.SourceRef(url=f"http://127.0.0.1:{port}/never.mp4", size_bytes=1000)
    sock.close()


@dataclass
class Harness:
    orchestrator: Orchestrator
    worker: Worker
    stop: asyncio.Event
    task: asyncio.Task
    tmp_path: Path

    async def session(self, index: int = 0) -> Session:
        sessions = self.orchestrator.servicer.sessions
        await until(lambda: len(sessions) > index, f"worker session {index}")
        return sessions[index]

    async def outcome(self, session: Session, task_id: str):
        return await until(lambda: session.outcome(task_id), f"the outcome of {task_id}")

    async def pid_of(self, task_id: str) -> int:
        return await until(
            lambda: (t := self.worker.running.get(task_id)) is not None and t.pid,
            f"the process of {task_id}",
        )


@contextlib.asynccontextmanager
async def harness(
    tmp_path: Path, settings: Settings, slots: int = 1, **options
) -> AsyncIterator[Harness]:
    orchestrator = await start_orchestrator(tmp_path, free_port())
    # the worker gets no storage credentials: its assignments carry what it may do
    without_storage_keys = settings.model_copy(
        update={"s3_access_key_id": None, "s3_secret_access_key": None, "embedded": False}
    )
    assert s3_credentials(without_storage_keys) is None
    worker = Worker(
        without_storage_keys,
        f"127.0.0.1:{orchestrator.port}",
        slots,
        backoff_cap=1.0,
        work_dir=tmp_path / "work",
        **options,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    h = Harness(orchestrator, worker, stop, task, tmp_path)
    try:
        yield h
    finally:
        stop.set()
        await task
        if not h.orchestrator.stop.is_set():
            await h.orchestrator.shutdown()


@pytest.fixture
async def h(tmp_path, storage_settings) -> AsyncIterator[Harness]:
    async with harness(tmp_path, storage_settings) as running:
        yield running


def output(settings: Settings) -> pb.OutputRef:
    """A fresh output prefix with the POST policy an orchestrator would sign for it."""
    out = pb.OutputRef(bucket=settings.media_bucket, prefix=f"videos/{uuid.uuid4().hex}/")
    task_urls.sign_output(make_s3_client(settings), out, 3600, 1024**3)
    return out


def download(s3, bucket: str, key: str, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(bucket, key, str(to))
    return to


# --- tests -------------------------------------------------------------------------------------


async def test_hello_with_a_service_token_then_welcome(h: Harness):
    session = await h.session()
    hello = session.hello
    assert hello.worker_id == f"{socket.gethostname()}-{os.getpid()}"
    assert hello.hostname == socket.gethostname()
    assert hello.slots == 1
    assert {"libx264", "aac"} <= set(hello.encoders)
    assert hello.version
    assert (session.principal.subject, session.principal.kind) == ("worker", "service")
    assert h.worker.orchestrator_id == "fake-orchestrator"
    # idle heartbeats at the interval the welcome set
    await until(lambda: len(session.heartbeats()) >= 3, "three heartbeats")
    assert session.heartbeats()[0] == []


async def test_probe_returns_the_sources_streams(h: Harness, source):
    session = await h.session()
    task = session.assign(probe=pb.ProbeSpec(source=source))
    result = await h.outcome(session, task.task_id)
    assert isinstance(result, pb.TaskResult), result
    assert (result.task_id, result.lease_id) == (task.task_id, task.lease_id)
    probe = result.probe
    assert probe.format.startswith("mov,mp4")
    assert conv.seconds(probe.duration) == pytest.approx(CLIP_SECONDS, abs=0.1)
    v = probe.video
    assert (v.codec, v.width, v.height, v.frame_rate, v.pixel_format) == (
        "h264",
        320,
        180,
        FPS,
        "yuv420p",
    )
    assert (probe.audio.codec, probe.audio.sample_rate, probe.audio.channels) == ("aac", 44100, 2)
    assert conv.seconds(result.elapsed) > 0
    assert h.worker.running == {}


def chunk_spec(source: pb.SourceRef, out: pb.OutputRef) -> pb.VideoChunkSpec:
    return pb.VideoChunkSpec(
        source=source,
        chunk_index=0,
        start=conv.duration(0),
        end=conv.duration(CLIP_SECONDS),
        segment_duration=conv.duration(SEGMENT),
        first_segment_index=0,
        renditions=[
            pb.RenditionSpec(
                id="180p",
                width=320,
                height=180,
                bitrate=300_000,
                max_bitrate=450_000,
                buffer_size=600_000,
                profile="high",
                preset="veryfast",
            ),
            pb.RenditionSpec(
                id="144p",
                width=256,
                height=144,
                bitrate=200_000,
                max_bitrate=300_000,
                buffer_size=400_000,
                profile="main",
                preset="veryfast",
            ),
        ],
        output=out,
        output_ts_offset=conv.duration(1.0),
        rotation_degrees=0,
        frame_rate=FPS,
    )


def object_keys(s3, bucket: str, prefix: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


async def test_video_chunk_segments_are_uploaded_with_cache_headers_and_decode(
    h: Harness, source, s3, storage_settings, tmp_path
):
    session = await h.session()
    out = output(storage_settings)
    task = session.assign(video_chunk=chunk_spec(source, out))
    result = await h.outcome(session, task.task_id)
    assert isinstance(result, pb.TaskResult), result
    renditions = {r.rendition_id: r for r in result.video_chunk.renditions}
    assert set(renditions) == {"180p", "144p"}
    expected_keys = []
    for rid, (width, height) in {"180p": (320, 180), "144p": (256, 144)}.items():
        r = renditions[rid]
        assert r.codecs.startswith("avc1.")
        assert r.init_key == f"{out.prefix}{rid}/init.mp4"
        assert [s.index for s in r.segments] == [0, 1]
        assert [s.key for s in r.segments] == [
            f"{out.prefix}{rid}/seg_00000.m4s",
            f"{out.prefix}{rid}/seg_00001.m4s",
        ]
        assert [conv.seconds(s.duration) for s in r.segments] == pytest.approx([SEGMENT] * 2)
        init_head = s3.head_object(Bucket=out.bucket, Key=r.init_key)
        assert init_head["ContentType"] == "video/mp4"
        assert init_head["CacheControl"] == "public, max-age=31536000, immutable"
        init = download(s3, out.bucket, r.init_key, tmp_path / rid / "init.mp4")
        for s in r.segments:
            head = s3.head_object(Bucket=out.bucket, Key=s.key)
            assert head["ContentType"] == "video/iso.segment"
            assert head["CacheControl"] == "public, max-age=31536000, immutable"
            assert head["ContentLength"] == s.size_bytes > 0
            seg = download(s3, out.bucket, s.key, tmp_path / rid / Path(s.key).name)
            frames = clips.decode_video_segment(init, seg)
            assert len(frames) == FPS * SEGMENT
            assert (frames[0].width, frames[0].height) == (width, height)
            assert frames[0].key_frame
        expected_keys += [r.init_key, *(s.key for s in r.segments)]
    assert object_keys(s3, out.bucket, out.prefix) == sorted(expected_keys)
    fractions = [p.fraction for _, p in session.events("progress")]
    assert fractions and all(0 <= f <= 1 for f in fractions)
    assert fractions == sorted(fractions)
    assert not any((h.tmp_path / "work").glob("*/task-*")), "task directories are deleted"

    # A re-run (new lease) overwrites the same keys: nothing is duplicated.
    again = session.assign(task_id=task.task_id, video_chunk=chunk_spec(source, out))
    second = await until(
        lambda: next(
            (
                m.result
                for _, m in session.received
                if m.WhichOneof("event") == "result" and m.result.lease_id == again.lease_id
            ),
            None,
        ),
        "the re-run's result",
    )
    assert [s.key for r in second.video_chunk.renditions for s in r.segments] == [
        s.key for r in result.video_chunk.renditions for s in r.segments
    ]
    assert object_keys(s3, out.bucket, out.prefix) == sorted(expected_keys)


async def test_audio_track_is_uploaded_and_decodes(
    h: Harness, source, s3, storage_settings, tmp_path
):
    session = await h.session()
    out = output(storage_settings)
    task = session.assign(
        audio=pb.AudioSpec(
            source=source,
            bitrate=64_000,
            segment_duration=conv.duration(SEGMENT),
            output=out,
            output_ts_offset=conv.duration(1.0),
            duration=conv.duration(CLIP_SECONDS),
        )
    )
    result = await h.outcome(session, task.task_id)
    assert isinstance(result, pb.TaskResult), result
    audio = result.audio
    assert audio.codecs == "mp4a.40.2"
    assert audio.init_key == f"{out.prefix}audio/init.mp4"
    assert [s.key for s in audio.segments] == [
        f"{out.prefix}audio/seg_{i:05d}.m4s" for i in range(len(audio.segments))
    ]
    assert len(audio.segments) >= 2
    assert sum(conv.seconds(s.duration) for s in audio.segments) == pytest.approx(
        CLIP_SECONDS, abs=0.05
    )
    init = download(s3, out.bucket, audio.init_key, tmp_path / "a" / "init.mp4")
    segments = []
    for s in audio.segments:
        head = s3.head_object(Bucket=out.bucket, Key=s.key)
        assert head["ContentType"] == "video/iso.segment"
        assert head["CacheControl"] == "public, max-age=31536000, immutable"
        segments.append(download(s3, out.bucket, s.key, tmp_path / "a" / Path(s.key).name))
    frames = clips.decode_audio_track(init, segments)
    samples = sum(f.samples for f in frames)
    assert samples / frames[0].sample_rate == pytest.approx(CLIP_SECONDS, abs=0.05)


async def test_poster_is_a_jpeg_with_its_own_cache_policy(h: Harness, source, s3, storage_settings):
    session = await h.session()
    out = output(storage_settings)
    task = session.assign(
        poster=pb.PosterSpec(source=source, at=conv.duration(0.5), max_width=160, output=out)
    )
    result = await h.outcome(session, task.task_id)
    assert isinstance(result, pb.TaskResult), result
    assert (result.poster.key, result.poster.width, result.poster.height) == (
        f"{out.prefix}poster.jpg",
        160,
        90,
    )
    head = s3.head_object(Bucket=out.bucket, Key=result.poster.key)
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == "public, max-age=86400"
    body = s3.get_object(Bucket=out.bucket, Key=result.poster.key)["Body"].read()
    with av.open(io.BytesIO(body)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (160, 90)


async def test_random_bytes_fail_for_good_with_a_clear_message(h: Harness, garbage):
    session = await h.session()
    task = session.assign(probe=pb.ProbeSpec(source=garbage))
    failure = await h.outcome(session, task.task_id)
    assert isinstance(failure, pb.TaskFailure), failure
    assert failure.retryable is False
    assert "not a video" in failure.error
    assert "X-Amz-Signature" not in failure.error and "Traceback" not in failure.error


async def test_an_invalid_spec_fails_for_good(h: Harness, source, storage_settings):
    session = await h.session()
    spec = chunk_spec(source, output(storage_settings))
    del spec.renditions[:]
    task = session.assign(video_chunk=spec)
    failure = await h.outcome(session, task.task_id)
    assert isinstance(failure, pb.TaskFailure) and failure.retryable is False
    assert failure.error == "invalid task: the video chunk task has no renditions"


async def test_heartbeats_name_the_running_task_and_cancellation_kills_its_process(
    h: Harness, stalled, source
):
    session = await h.session()
    task = session.assign(probe=pb.ProbeSpec(source=stalled))
    pid = await h.pid_of(task.task_id)
    await until(lambda: [task.task_id] in session.heartbeats(), "a heartbeat naming the task")
    assert not process_gone(pid)

    session.cancel(task.task_id)
    await until(lambda: process_gone(pid), f"task process {pid} to be killed")
    await until(lambda: task.task_id not in h.worker.running, "the task to be forgotten")
    n = len(session.heartbeats())
    await until(lambda: len(session.heartbeats()) > n, "a heartbeat after the cancellation")
    assert session.heartbeats()[-1] == []
    assert session.outcome(task.task_id) is None, "a cancelled task reports nothing"

    # the worker keeps serving
    probe = session.assign(probe=pb.ProbeSpec(source=source))
    assert isinstance(await h.outcome(session, probe.task_id), pb.TaskResult)
    assert session.outcome(task.task_id) is None


async def test_a_killed_task_process_is_a_retryable_failure(h: Harness, stalled, source):
    session = await h.session()
    task = session.assign(probe=pb.ProbeSpec(source=stalled))
    pid = await h.pid_of(task.task_id)
    os.kill(pid, signal.SIGKILL)
    failure = await h.outcome(session, task.task_id)
    assert isinstance(failure, pb.TaskFailure), failure
    assert failure.retryable is True
    assert failure.error == "the encoder process died (signal 9, SIGKILL)"
    assert failure.lease_id == task.lease_id
    # the worker survives and serves the next task
    probe = session.assign(probe=pb.ProbeSpec(source=source))
    assert isinstance(await h.outcome(session, probe.task_id), pb.TaskResult)


async def test_one_slot_never_runs_two_tasks_at_once(h: Harness, stalled, source):
    session = await h.session()
    first = session.assign(probe=pb.ProbeSpec(source=stalled))
    second = session.assign(probe=pb.ProbeSpec(source=source))
    refused = await h.outcome(session, second.task_id)
    assert isinstance(refused, pb.TaskFailure) and refused.retryable is True
    assert "no free slot" in refused.error
    assert list(h.worker.running) == [first.task_id]
    await until(lambda: [first.task_id] in session.heartbeats(), "a heartbeat naming the task")

    session.cancel(first.task_id)
    await until(lambda: not h.worker.running, "the slot to free up")
    third = session.assign(probe=pb.ProbeSpec(source=source))
    assert isinstance(await h.outcome(session, third.task_id), pb.TaskResult)
    assert all(len(ids) <= 1 for ids in session.heartbeats())


async def test_a_task_reassigned_with_a_new_lease_restarts(h: Harness, stalled):
    session = await h.session()
    first = session.assign(probe=pb.ProbeSpec(source=stalled))
    old_pid = await h.pid_of(first.task_id)
    session.commands.put_nowait(pb.ConnectResponse(assignment=first))  # same lease: ignored
    n = len(session.heartbeats())
    await until(lambda: len(session.heartbeats()) > n + 2, "heartbeats after the duplicate")
    assert h.worker.running[first.task_id].pid == old_pid and not process_gone(old_pid)
    again = session.assign(task_id=first.task_id, probe=pb.ProbeSpec(source=stalled))
    await until(lambda: process_gone(old_pid), "the old lease's process to be killed")
    new_pid = await h.pid_of(first.task_id)
    assert new_pid != old_pid and not process_gone(new_pid)
    assert h.worker.running[first.task_id].lease_id == again.lease_id
    os.kill(new_pid, signal.SIGKILL)
    failure = await h.outcome(session, first.task_id)
    assert failure.lease_id == again.lease_id, "nothing was reported for the replaced lease"
    assert all(len(ids) <= 1 for ids in session.heartbeats())


async def test_two_slots_run_two_task_processes(tmp_path, storage_settings, stalled):
    async with harness(tmp_path, storage_settings, slots=2) as h2:
        session = await h2.session()
        assert session.hello.slots == 2
        a = session.assign(probe=pb.ProbeSpec(source=stalled))
        b = session.assign(probe=pb.ProbeSpec(source=stalled))
        pids = {await h2.pid_of(a.task_id), await h2.pid_of(b.task_id)}
        assert len(pids) == 2
        await until(
            lambda: any(
                sorted(ids) == sorted([a.task_id, b.task_id]) for ids in session.heartbeats()
            ),
            "a heartbeat naming both tasks",
        )
    # stopping the worker killed both
    assert all(process_gone(pid) for pid in pids)


async def test_a_broken_stream_kills_tasks_and_the_worker_reconnects(
    h: Harness, stalled, source, tmp_path
):
    session = await h.session(0)
    task = session.assign(probe=pb.ProbeSpec(source=stalled))
    pid = await h.pid_of(task.task_id)

    # 1. the orchestrator ends the stream: the task is killed, the worker comes back
    session.close()
    await until(lambda: process_gone(pid), "the running task to be killed")
    again = await h.session(1)
    assert again.hello.worker_id == session.hello.worker_id
    probe = again.assign(probe=pb.ProbeSpec(source=source))
    assert isinstance(await h.outcome(again, probe.task_id), pb.TaskResult)

    # 2. the orchestrator goes away; a new one starts on the same port: the worker finds it
    task = again.assign(probe=pb.ProbeSpec(source=stalled))
    pid = await h.pid_of(task.task_id)
    port = h.orchestrator.port
    await h.orchestrator.shutdown()
    await until(lambda: process_gone(pid), "the running task to be killed")
    h.orchestrator = await start_orchestrator(tmp_path, port)
    fresh = await h.session(0)
    probe = fresh.assign(probe=pb.ProbeSpec(source=source))
    assert isinstance(await h.outcome(fresh, probe.task_id), pb.TaskResult)
    assert h.worker.sessions == 3


async def test_a_task_silent_for_too_long_is_killed_and_fails_retryable(
    tmp_path, storage_settings, stalled
):
    async with harness(tmp_path, storage_settings, stall_timeout=1.0) as h1:
        session = await h1.session()
        task = session.assign(probe=pb.ProbeSpec(source=stalled))
        pid = await h1.pid_of(task.task_id)
        failure = await h1.outcome(session, task.task_id)
        assert isinstance(failure, pb.TaskFailure) and failure.retryable is True
        assert failure.error == "the task made no progress for 1 s and was killed"
        assert process_gone(pid)


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def worker_process(tmp_path: Path, seaweedfs, port: int) -> subprocess.Popen:
    """`python -m streamify.transcode.worker.main` configured through STREAMIFY_* variables."""
    env = {
        **os.environ,
        **{f"STREAMIFY_{k.upper()}": str(v) for k, v in seaweedfs.settings_overrides().items()},
        "STREAMIFY_SIGNING_KEYS": signing_keys_of("worker"),
        "STREAMIFY_DATA_DIR": str(tmp_path),
        "STREAMIFY_LOG_FORMAT": "text",
        "TMPDIR": str(tmp_path),  # its work directory
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamify.transcode.worker.main",
            "--orchestrator",
            f"127.0.0.1:{port}",
            "--slots",
            "1",
        ],
        env=env,
    )


async def test_sigterm_kills_tasks_closes_the_stream_and_exits_0(
    tmp_path, storage_settings, seaweedfs, stalled
):
    orchestrator = await start_orchestrator(tmp_path, free_port())
    proc = worker_process(tmp_path, seaweedfs, orchestrator.port)
    try:
        sessions = orchestrator.servicer.sessions
        await until(lambda: sessions, "the worker process to connect")
        session = sessions[0]
        assert session.hello.worker_id.endswith(f"-{proc.pid}")
        task = session.assign(probe=pb.ProbeSpec(source=stalled))
        await until(lambda: [task.task_id] in session.heartbeats(), "the task to run")
        (child,) = await until(lambda: children_of(proc.pid), "the task process")

        proc.send_signal(signal.SIGTERM)
        await until(lambda: proc.poll() is not None, "the worker to exit")
        assert proc.returncode == 0
        assert process_gone(child)
        await until(lambda: session.ended, "the stream to be closed")
        assert session.outcome(task.task_id) is None
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        await orchestrator.shutdown()


async def test_task_processes_die_with_a_killed_worker(tmp_path, seaweedfs, stalled):
    orchestrator = await start_orchestrator(tmp_path, free_port())
    proc = worker_process(tmp_path, seaweedfs, orchestrator.port)
    try:
        sessions = orchestrator.servicer.sessions
        await until(lambda: sessions, "the worker process to connect")
        task = sessions[0].assign(probe=pb.ProbeSpec(source=stalled))
        await until(lambda: [task.task_id] in sessions[0].heartbeats(), "the task to run")
        (child,) = await until(lambda: children_of(proc.pid), "the task process")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        await until(lambda: process_gone(child), "the orphaned task process to die")
        # the dead worker's directory is swept by the next worker that starts there
        (left,) = tmp_path.glob("streamify-worker-*")
        live = tmp_path / "streamify-worker-live"
        (live / "task-x").mkdir(parents=True)
        holder = _hold_lock(live)
        sweep_work_dirs(tmp_path)
        assert not left.exists()
        assert live.exists(), "a live worker's directory is kept"
        os.close(holder)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        await orchestrator.shutdown()
