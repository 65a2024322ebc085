"""The REAL transcode pipeline in a test: Metadata (+ Upload) and the orchestrator in the test's
event loop, real worker PROCESSES (``python -m streamify.cli worker``) connected to it, real
SeaweedFS; and a validator that downloads the HLS output from the media bucket and checks it
with PyAV the way a player would use it.

Rules kept here:
- every worker is our own child process, configured only through STREAMIFY_* variables, and
  stopped (or killed) by its own PID;
- every wait is a bounded loop (a cap on tries against hangs), never a time limit on a test;
- clips stay small: the machine's cores are shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import grpc
import pytest
import requests
from pydantic import SecretStr

from streamify.core import storage_keys
from streamify.core.config import Settings
from streamify.core.storage import make_s3_client
from streamify.transcode.orchestrator import app as transcode_app
from streamify.transcode.orchestrator import dag
from streamify.upload import app as upload_app
from streamify.v1 import metadata_service_pb2 as meta
from streamify.v1 import (
    metadata_service_pb2_grpc,
    transcode_service_pb2_grpc,
    upload_service_pb2_grpc,
)
from streamify.v1 import transcode_service_pb2 as api
from streamify.v1 import upload_service_pb2 as up
from streamify.v1.video_pb2 import Video, VideoStatus
from tests.support import clips
from tests.support.keys import signing_keys_of
from tests.support.mesh import running_service
from tests.support.metadata import bearer, running_metadata, service_settings
from tests.support.servers import _stop_process, free_port

SERVICE = bearer("operator", kind="service")
ALICE = bearer("alice")
STORED_UPLOAD = "stored1"  # the upload id `stored_source` records for the videos it makes

SUCCEEDED, FAILED, CANCELLED, RUNNING = (
    api.JobState.JOB_STATE_SUCCEEDED,
    api.JobState.JOB_STATE_FAILED,
    api.JobState.JOB_STATE_CANCELLED,
    api.JobState.JOB_STATE_RUNNING,
)
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})

SEGMENT = 1.0  # seconds; 2 segments per chunk, so a 6 s clip is 3 chunk tasks
SEGMENTS_PER_CHUNK = 2
POLL = 0.2  # seconds between two looks at a job
# Bound of every wait loop, in tries of POLL (a guard against hangs on a very busy machine,
# not a speed requirement).
MAX_TRIES = 3000

# The orchestrator's tunables for tests: small segments, fast sweeps and heartbeats.
TRANSCODE_OVERRIDES: dict[str, Any] = dict(
    transcode_segment_seconds=SEGMENT,
    transcode_segments_per_chunk=SEGMENTS_PER_CHUNK,
    transcode_heartbeat_interval_seconds=0.5,
    transcode_lease_seconds=8.0,
    transcode_sweep_interval_seconds=0.25,
    transcode_dispatch_poll_seconds=0.25,
    transcode_progress_interval_seconds=0.25,
    shutdown_grace_seconds=1.0,
    queue_visibility_timeout_seconds=10,
)


def mesh_settings(data_dir: Path, seaweedfs, **overrides: Any) -> Settings:
    """Settings shared by Metadata, Upload and the orchestrator of one mesh (one SQLite file in
    `data_dir`, the session's SeaweedFS buckets)."""
    values = {**TRANSCODE_OVERRIDES, **seaweedfs.settings_overrides(), **overrides}
    return service_settings(data_dir=data_dir, **values)


# --- worker processes ---------------------------------------------------------------------------

# Settings a worker process needs, passed as STREAMIFY_* variables.
_WORKER_FIELDS = (
    "jwt_issuer",
    "s3_endpoint_url",
    "s3_access_key_id",
    "s3_secret_access_key",
    "s3_region",
    "s3_addressing_style",
    "uploads_bucket",
    "media_bucket",
)


def worker_env(settings: Settings, directory: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
    for name in _WORKER_FIELDS:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None:
            env[f"STREAMIFY_{name.upper()}"] = str(value)
    env.update(
        {
            "STREAMIFY_SIGNING_KEYS": signing_keys_of("worker"),
            "STREAMIFY_DATA_DIR": str(directory),
            "STREAMIFY_WORKER_WORK_DIR": str(directory / "work"),
            "STREAMIFY_LOG_FORMAT": "text",
            "STREAMIFY_LOG_LEVEL": "INFO",
        }
    )
    return env


class WorkerProcess:
    """`python -m streamify.cli worker --orchestrator HOST:PORT --slots N`, our child."""

    def __init__(self, settings: Settings, target: str, directory: Path, slots: int = 1) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.log = directory / "worker.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "streamify.cli",
                    "worker",
                    "--orchestrator",
                    target,
                    "--slots",
                    str(slots),
                ],
                env=worker_env(settings, directory),
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def worker_id(self) -> str:
        """What the worker calls itself in its hello (and the job's tasks show)."""
        return f"{socket.gethostname()}-{self.proc.pid}"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def children(self) -> list[int]:
        """PIDs of its task processes (one per running task)."""
        return children_of(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL to this worker's own PID (its task processes die with it: PDEATHSIG)."""
        if self.alive:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """SIGTERM to its PID, wait; SIGKILL (same PID) if it does not exit in time."""
        _stop_process(self.proc, signal.SIGTERM)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "(no log)"
        return "\n".join(text)


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


# --- the mesh -----------------------------------------------------------------------------------


@dataclass
class Orch:
    """One running orchestrator and a channel to it."""

    target: str
    jobs: transcode_service_pb2_grpc.TranscodeServiceStub
    channel: grpc.aio.Channel


@dataclass
class Mesh:
    settings: Settings  # with metadata_target and the orchestrator's fixed port
    videos: metadata_service_pb2_grpc.MetadataServiceStub
    s3: Any
    root: Path
    orch: Orch | None = None
    uploads: upload_service_pb2_grpc.UploadServiceStub | None = None
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.settings.grpc_port}"

    # --- pieces ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def orchestrator(self, **overrides: Any) -> AsyncIterator[Orch]:
        """The real orchestrator (`app.run`, options from the settings) on the mesh's fixed
        port and database: a second one started after the first stopped is a restart.

        Like tests.support.mesh.running_service, but the stop is awaited in a bounded loop: an
        orchestrator that does not stop fails the test instead of hanging it (see
        test_transcode_faults: the dispatcher can swallow its cancellation)."""
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        task = asyncio.create_task(
            transcode_app.run(settings, on_ready=ready.set_result, stop_event=stop)
        )
        done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # start-up failed: raise its error
        target = f"127.0.0.1:{ready.result()}"
        channel = grpc.aio.insecure_channel(target)
        self.orch = Orch(target, transcode_service_pb2_grpc.TranscodeServiceStub(channel), channel)
        failed = False
        try:
            yield self.orch
        except BaseException:
            failed = True
            raise
        finally:
            self.orch = None
            await channel.close()
            stop.set()
            stopped = await _ended(task)
            if not stopped:
                task.cancel()  # pushes app.run's clean-up past the task it waits for
                await _ended(task)
                if not failed:
                    raise AssertionError(
                        "the orchestrator did not stop: app.run() still awaits a background task "
                        "after its stop event (a cancelled loop that swallowed the cancellation)"
                    )
            elif task.exception() is not None and not failed:
                raise task.exception()

    def start_worker(self, slots: int = 1) -> WorkerProcess:
        worker = WorkerProcess(
            self.settings, self.target, self.root / f"worker-{uuid.uuid4().hex[:6]}", slots
        )
        self.workers.append(worker)
        return worker

    async def stop_workers(self) -> None:
        """SIGTERM to each worker's PID, waiting without blocking the event loop (the services
        in it see the streams end); SIGKILL (same PID) if one does not exit."""
        for worker in self.workers:
            if worker.alive:
                os.kill(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            for _ in range(150):
                if not worker.alive:
                    break
                await asyncio.sleep(0.1)
            worker.stop()  # no-op once exited; SIGKILL otherwise
        await asyncio.sleep(0.5)  # let the orchestrator take the ended streams in

    def worker_logs(self) -> str:
        return "\n".join(
            f"--- worker {w.worker_id} ({'alive' if w.alive else f'exit {w.proc.returncode}'})\n{w.log_tail()}"
            for w in self.workers
        )

    def worker_by_id(self, worker_id: str) -> WorkerProcess | None:
        return next((w for w in self.workers if w.worker_id == worker_id), None)

    # --- jobs -----------------------------------------------------------------------------

    @property
    def jobs(self) -> transcode_service_pb2_grpc.TranscodeServiceStub:
        assert self.orch is not None, "no orchestrator running"
        return self.orch.jobs

    async def job(self, video_id: str) -> api.TranscodeJob:
        return await self.jobs.GetTranscodeJob(
            api.GetTranscodeJobRequest(name=f"transcodeJobs/{video_id}"), metadata=SERVICE
        )

    async def create_job(self, video_id: str) -> api.TranscodeJob:
        return await self.jobs.CreateTranscodeJob(
            api.CreateTranscodeJobRequest(video=f"videos/{video_id}"), metadata=SERVICE
        )

    async def until(
        self, check: Callable[[], Awaitable[Any]], what: str, tries: int = MAX_TRIES
    ) -> Any:
        """Polls `check` until it returns something truthy (a cap on tries, not a time limit)."""
        for _ in range(tries):
            value = await check()
            if value:
                return value
            await asyncio.sleep(POLL)
        raise AssertionError(f"never happened: {what}\n{self.worker_logs()}")

    async def finished_job(self, video_id: str) -> api.TranscodeJob:
        """Waits until the job is SUCCEEDED, FAILED or CANCELLED; never stuck forever."""

        async def check():
            try:
                job = await self.job(video_id)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:  # the queue has not delivered yet
                    return None
                raise
            return job if job.state in TERMINAL else None

        return await self.until(check, f"transcodeJobs/{video_id} finished")

    async def video(self, video_id: str) -> Video:
        return await self.videos.GetVideo(
            meta.GetVideoRequest(name=f"videos/{video_id}"), metadata=SERVICE
        )

    async def final_video(self, video_id: str) -> Video:
        """Waits until the Metadata service has the video READY or FAILED."""

        async def check():
            video = await self.video(video_id)
            final = (VideoStatus.VIDEO_STATUS_READY, VideoStatus.VIDEO_STATUS_FAILED)
            return video if video.status in final else None

        return await self.until(check, f"videos/{video_id} READY or FAILED")

    # --- sources --------------------------------------------------------------------------

    async def stored_source(self, path: Path, *, title: str = "clip") -> str:
        """A video moved to UPLOADED with a service token and its source put straight in the
        uploads bucket at the sealed key of an upload the video records (what the Upload
        service would have done)."""
        size = path.stat().st_size
        video = await self.videos.CreateVideo(
            meta.CreateVideoRequest(
                video=Video(title=title), owner="users/alice", source_size_bytes=size
            ),
            metadata=SERVICE,
        )
        video_id = video.name.removeprefix("videos/")
        await asyncio.to_thread(
            self.s3.put_object,
            Bucket=self.settings.uploads_bucket,
            Key=storage_keys.source_key(video_id, STORED_UPLOAD),
            Body=path.read_bytes(),
        )
        await self.videos.UpdateVideoStatus(
            meta.UpdateVideoStatusRequest(
                name=video.name,
                status=VideoStatus.VIDEO_STATUS_UPLOADED,
                source_upload=f"uploads/{STORED_UPLOAD}",
            ),
            metadata=SERVICE,
        )
        return video_id

    async def submit(self, path: Path, *, title: str = "clip") -> str:
        video_id = await self.stored_source(path, title=title)
        await self.create_job(video_id)
        return video_id

    async def upload(
        self, path: Path, *, content_type: str = "video/mp4", title: str = "clip"
    ) -> str:
        """Through the Upload service as a user: CreateUpload, PUT to the pre-signed URL,
        CompleteUpload; the job is created by the orchestrator from the queue."""
        assert self.uploads is not None, "the mesh runs no Upload service"
        data = path.read_bytes()
        upload = await self.uploads.CreateUpload(
            up.CreateUploadRequest(
                file_name=path.name, size_bytes=len(data), content_type=content_type, title=title
            ),
            metadata=ALICE,
        )
        assert upload.single_put.url, "a small clip goes up in one PUT"
        reply = await asyncio.to_thread(
            requests.put,
            upload.single_put.url,
            data=data,
            headers=dict(upload.single_put.headers),
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        done = await self.uploads.CompleteUpload(
            up.CompleteUploadRequest(name=upload.name), metadata=ALICE
        )
        assert done.state == up.UploadState.UPLOAD_STATE_COMPLETED
        return upload.video.removeprefix("videos/")

    def media_object(self, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.settings.media_bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None


@contextlib.asynccontextmanager
async def running_mesh(
    root: Path,
    seaweedfs,
    *,
    upload: bool = False,
    orchestrator: bool = True,
    workers: int = 2,
    **overrides: Any,
) -> AsyncIterator[Mesh]:
    """Metadata (+ Upload) and, optionally, the orchestrator in this event loop; `workers`
    worker processes (slots 1). Everything is stopped at the end, workers by their PID."""
    root.mkdir(parents=True, exist_ok=True)
    base = mesh_settings(root, seaweedfs, **overrides)
    async with running_metadata(base) as metadata, contextlib.AsyncExitStack() as stack:
        settings = base.model_copy(
            update={"metadata_target": metadata.target, "grpc_port": free_port()}
        )
        mesh = Mesh(settings, metadata.stub, make_s3_client(settings), root)
        if upload:
            upload_target = await stack.enter_async_context(
                running_service(upload_app.run, settings.model_copy(update={"grpc_port": 0}))
            )
            channel = grpc.aio.insecure_channel(upload_target)
            stack.push_async_callback(channel.close)
            mesh.uploads = upload_service_pb2_grpc.UploadServiceStub(channel)
        if orchestrator:
            await stack.enter_async_context(mesh.orchestrator())
        stack.push_async_callback(mesh.stop_workers)  # before the orchestrator stops (LIFO)
        for _ in range(workers):
            mesh.start_worker()
        yield mesh


async def _ended(task: asyncio.Task, tries: int = 300) -> bool:
    """Waits for `task` to end (a cap on tries of 0.1 s against hangs)."""
    for _ in range(tries):
        if task.done():
            return True
        await asyncio.sleep(0.1)
    return task.done()


# --- reading the output back ---------------------------------------------------------------------


def _attributes(line: str) -> dict[str, str]:
    body = line.split(":", 1)[1]
    return {k: v.strip('"') for k, v in re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', body)}


@dataclass
class MediaPlaylist:
    text: str
    init: str
    segments: list[tuple[float, str]]  # (EXTINF duration, URI)

    @staticmethod
    def parse(text: str) -> MediaPlaylist:
        lines = text.splitlines()
        init = next(_attributes(line)["URI"] for line in lines if line.startswith("#EXT-X-MAP:"))
        segments = []
        for i, line in enumerate(lines):
            if line.startswith("#EXTINF:"):
                segments.append((float(line.split(":", 1)[1].rstrip(",")), lines[i + 1]))
        return MediaPlaylist(text, init, segments)


@dataclass
class Output:
    """What `check_output` found: enough to compare two runs' structure."""

    renditions: dict[str, tuple[int, int]]  # id -> (width, height)
    segments: dict[str, list[float]]  # id (and "audio") -> EXTINF durations
    frames: dict[str, int]  # video rendition id -> decoded frames
    audio_seconds: float | None
    master: list[dict[str, str]]

    def structure(self) -> tuple:
        return (
            sorted(self.renditions.items()),
            sorted((k, len(v), [round(d, 3) for d in v]) for k, v in self.segments.items()),
            sorted(self.frames.items()),
        )


def _profile_idc(name: str) -> int:
    return {"baseline": 66, "constrained baseline": 66, "main": 77, "high": 100}[name.lower()]


class OutputChecker:
    """Downloads videos/{id}/ from the media bucket and checks it as a player would use it."""

    def __init__(self, mesh: Mesh, video_id: str, directory: Path) -> None:
        self.mesh, self.video_id = mesh, video_id
        self.prefix = storage_keys.media_prefix(video_id)
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)

    def fetch(self, relative: str) -> Path:
        data = self.mesh.media_object(self.prefix + relative)
        assert data is not None, (
            f"s3://{self.mesh.settings.media_bucket}/{self.prefix}{relative} is missing"
        )
        path = self.dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def playlist(self, uri: str) -> tuple[MediaPlaylist, Path, list[Path]]:
        """A media playlist, its init segment and its media segments (all downloaded)."""
        text = self.fetch(uri).read_text()
        playlist = MediaPlaylist.parse(text)
        folder = uri.rsplit("/", 1)[0]
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST"), text
        longest = max(d for d, _ in playlist.segments)
        assert f"#EXT-X-TARGETDURATION:{max(1, math.ceil(longest - 0.001))}" in text, text
        init = self.fetch(f"{folder}/{playlist.init}")
        segments = [self.fetch(f"{folder}/{name}") for _, name in playlist.segments]
        return playlist, init, segments


def check_output(
    mesh: Mesh,
    video_id: str,
    directory: Path,
    *,
    duration: float,
    fps: float | Fraction,
    display: tuple[int, int],
    audio_duration: float | None,
    segment: float = SEGMENT,
) -> Output:
    """The whole ladder of one READY video, checked with PyAV:

    * the master: one variant per rendition, largest first, none larger than the source
      (`display`, after rotation), RESOLUTION = the decoded frames' size, CODECS = the H.264
      profile/level of the stream (+ mp4a.40.2 with audio), FRAME-RATE, BANDWIDTH = the peak
      of the video's and the audio's full segments, AVERAGE-BANDWIDTH = their averages; the
      audio group when (and only when) the source has sound;
    * every video segment decodes on its own (init + segment), starts with a keyframe, is
      8-bit 4:2:0 at the rendition's size and sits on the segment grid; its EXTINF is its
      frame count; all segments but the last are `segment` seconds; frames are on one
      constant-rate timeline across chunk joins and add up to `duration` within one frame;
    * the audio decodes as one gap-free track that starts with the video (its priming at
      most 50 ms before) and ends within 50 ms of `audio_duration` after the video's start;
    * the poster is a JPEG with the display's aspect ratio.
    """
    rate = Fraction(fps).limit_denominator(1001)
    step = 1 / rate
    half = step / 2
    checker = OutputChecker(mesh, video_id, directory)
    master_text = checker.fetch(dag.MANIFEST).read_text()
    variants, media = clips.parse_master(master_text)
    assert variants, master_text
    assert "#EXT-X-ENDLIST" not in master_text
    segments: dict[str, list[float]] = {}
    frames_of: dict[str, int] = {}
    renditions: dict[str, tuple[int, int]] = {}

    # --- audio ---------------------------------------------------------------------------------
    audio_peak = audio_average_bits = 0.0
    audio_seconds = None
    audio_start = audio_end_pts = Fraction(0)
    if audio_duration is None:
        assert not media and "AUDIO=" not in master_text, "a silent video has no audio group"
    else:
        assert len(media) == 1, master_text
        (group,) = media
        assert (group["TYPE"], group["GROUP-ID"], group["DEFAULT"]) == ("AUDIO", "audio", "YES")
        playlist, init, files = checker.playlist(group["URI"])
        decoded = clips.decode_audio_track(init, files)
        assert decoded, "the audio track decodes"
        rate_hz = decoded[0].sample_rate
        for a, b in zip(decoded, decoded[1:], strict=False):
            assert b.pts == a.pts + a.samples, f"gap or overlap in the audio at pts {a.pts}"
        # The audio's timeline: from its first sample (the encoder's priming frame, just
        # before the video's time zero) to the end of its last frame.
        assert decoded[0].time_base == Fraction(1, rate_hz)
        audio_start = Fraction(decoded[0].pts, rate_hz)
        audio_end_pts = Fraction(decoded[-1].pts + decoded[-1].samples, rate_hz)
        assert abs(sum(d for d, _ in playlist.segments) - audio_duration) <= 0.050
        durs = [d for d, _ in playlist.segments]
        sizes = [p.stat().st_size for p in files]
        longest = max(durs)
        audio_peak = max(s * 8 / d for s, d in zip(sizes, durs, strict=True) if d >= longest / 2)
        audio_average_bits = sum(sizes) * 8 / sum(durs)
        segments["audio"] = durs

    # --- video renditions ------------------------------------------------------------------------
    heights = [int(v["RESOLUTION"].split("x")[1]) for v in variants]
    assert heights == sorted(heights, reverse=True), "largest rendition first"
    video_start = None
    for v in variants:
        width, height = (int(x) for x in v["RESOLUTION"].split("x"))
        assert width <= display[0] and height <= display[1], f"{v['URI']} is larger than the source"
        assert width % 2 == 0 and height % 2 == 0
        rid = v["URI"].split("/")[0]
        renditions[rid] = (width, height)
        playlist, init, files = checker.playlist(v["URI"])
        durs = [d for d, _ in playlist.segments]
        assert all(abs(d - segment) < 0.001 for d in durs[:-1]), durs
        assert 0 < durs[-1] <= segment + 0.001, durs
        times: list[Fraction] = []
        first_seg_start = None
        for k, ((extinf, name), path) in enumerate(zip(playlist.segments, files, strict=True)):
            decoded = clips.decode_video_segment(init, path)
            assert decoded, f"{rid}/{name} has no frame"
            first = decoded[0]
            assert first.key_frame and first.pict_type == av.video.frame.PictureType.I, (
                f"{rid}/{name}"
            )
            for f in decoded:
                assert (f.width, f.height, f.format.name) == (width, height, "yuv420p"), (
                    f"{rid}/{name}"
                )
            start = Fraction(first.pts) * first.time_base
            if first_seg_start is None:
                first_seg_start = start
            # on the grid: segment k starts at the first output frame at or after k * segment
            expected = math.ceil(k * Fraction(segment).limit_denominator(1000) * rate) * step
            assert abs((start - first_seg_start) - expected) < half, (
                f"{rid}/{name} starts at {start}"
            )
            assert abs(len(decoded) * step - Fraction(extinf)) < half + Fraction(1, 1000), (
                f"{rid}/{name}: {len(decoded)} frames for EXTINF {extinf}"
            )
            times += [Fraction(f.pts) * f.time_base for f in decoded]
        for a, b in zip(times, times[1:], strict=False):
            assert abs((b - a) - step) < Fraction(1, 1000), (
                f"{rid}: frame missing or repeated at {a}"
            )
        total = len(times) * step
        assert abs(total - Fraction(duration)) <= step + Fraction(1, 1_000_000), (
            f"{rid}: {len(times)} frames = {float(total)} s, the source is {duration} s"
        )
        assert abs(Fraction(sum(durs)) - total) < Fraction(1, 100)
        if video_start is None:
            video_start = first_seg_start
        segments[rid] = durs
        frames_of[rid] = len(times)

        # master attributes of this variant
        with av.open(io.BytesIO(init.read_bytes() + files[0].read_bytes())) as c:
            ctx = c.streams.video[0].codec_context
            profile, level = _profile_idc(ctx.profile), ctx.level
        codecs = v["CODECS"].split(",")
        assert re.fullmatch(r"avc1\.[0-9a-fA-F]{6}", codecs[0]), v["CODECS"]
        assert (int(codecs[0][5:7], 16), int(codecs[0][9:11], 16)) == (profile, level), v["CODECS"]
        assert codecs[1:] == ([] if audio_duration is None else ["mp4a.40.2"]), v["CODECS"]
        assert v["FRAME-RATE"] == f"{float(rate):.3f}", v
        sizes = [p.stat().st_size for p in files]
        longest = max(durs)
        peak = (
            max(s * 8 / d for s, d in zip(sizes, durs, strict=True) if d >= longest / 2)
            + audio_peak
        )
        average = sum(sizes) * 8 / sum(durs) + audio_average_bits
        assert int(v["BANDWIDTH"]) == pytest.approx(peak, rel=0.005, abs=16), (v, peak)
        assert int(v["AVERAGE-BANDWIDTH"]) == pytest.approx(average, rel=0.005, abs=16), (
            v,
            average,
        )
        assert int(v["BANDWIDTH"]) >= int(v["AVERAGE-BANDWIDTH"]) > 0
        if audio_duration is None:
            assert "AUDIO" not in v
        else:
            assert v["AUDIO"] == "audio"
    if audio_duration is not None:
        # Starts with the video (priming at most one AAC frame before it), ends with the
        # source's sound, within 50 ms.
        assert Fraction(0) <= video_start - audio_start <= Fraction(50, 1000), (
            float(audio_start),
            float(video_start),
        )
        audio_seconds = float(audio_end_pts - video_start)
        assert abs(audio_seconds - audio_duration) <= 0.050, (audio_seconds, audio_duration)

    # --- poster -----------------------------------------------------------------------------------
    poster = checker.fetch(dag.POSTER_FILE).read_bytes()
    assert poster[:2] == b"\xff\xd8" and poster[-2:] == b"\xff\xd9", "the poster is a JPEG"
    with av.open(io.BytesIO(poster)) as c:
        picture = next(c.decode(video=0))
    assert abs(picture.width / picture.height - display[0] / display[1]) < 0.02
    return Output(renditions, segments, frames_of, audio_seconds, variants)


def check_ready_video(
    video: Video, output: Output, video_id: str, *, duration: float, fps: float
) -> None:
    """The Metadata service's view of a READY video agrees with the stored output."""
    assert video.status == VideoStatus.VIDEO_STATUS_READY, video
    # (a private video's URLs carry a signed grant in their path: videos/{id}/grant.E.S/...)
    no_grant = re.compile(r"/grant\.[^/]+/")
    assert no_grant.sub("/", video.playback_url).endswith(f"/videos/{video_id}/{dag.MANIFEST}"), (
        video.playback_url
    )
    assert no_grant.sub("/", video.poster_url).endswith(f"/videos/{video_id}/{dag.POSTER_FILE}"), (
        video.poster_url
    )
    assert {r.id: (r.width, r.height) for r in video.renditions} == output.renditions
    by_uri = {v["URI"].split("/")[0]: v for v in output.master}
    for r in video.renditions:
        assert r.bandwidth == int(by_uri[r.id]["BANDWIDTH"])
        assert r.average_bandwidth == int(by_uri[r.id]["AVERAGE-BANDWIDTH"])
        assert r.codecs == by_uri[r.id]["CODECS"]
        assert r.frame_rate == pytest.approx(fps, abs=0.001)
    seconds = video.duration.seconds + video.duration.nanos / 1e9
    assert abs(seconds - duration) <= 1 / fps + 1e-6, (seconds, duration)


def states(job: api.TranscodeJob) -> dict[str, tuple[int, int]]:
    """task id -> (state, attempts)"""
    return {t.id: (t.state, t.attempts) for t in job.tasks}


def describe(job: api.TranscodeJob) -> str:
    tasks = ", ".join(
        f"{t.id}={api.TaskState.Name(t.state).removeprefix('TASK_STATE_')}x{t.attempts}"
        + (f" ({t.last_error})" if t.last_error else "")
        for t in job.tasks
    )
    return f"{api.JobState.Name(job.state)} {job.failure_reason!r}: {tasks}"


def names(tasks: Iterable[api.TranscodeTask]) -> list[str]:
    return [t.id for t in tasks]
