"""The per-video DAG, as pure functions: task names, the plan made from a probe, the task
specs the workers receive, what becomes runnable when, attempts and failure, and where the
progressive publication stands. No I/O here (the store and the orchestrator do that).

    probe ──▶ chunk-0000 … chunk-NNNN, audio (if the source has sound), poster ──▶ assemble

Only the probe exists when a job is created; its result makes the plan, and the plan's tasks
are inserted in the same transaction that records the probe result. The assemble task is done
by the orchestrator itself once every other task has succeeded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from google.protobuf.duration_pb2 import Duration

from streamify.core.config import TranscodeSettings
from streamify.core.humanize import human_bytes, human_duration
from streamify.core.storage_keys import media_prefix
from streamify.transcode.media import grid
from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.media.ladder import (
    plan_chunks,
    plan_duration,
    plan_frame_rate,
    plan_ladder,
    plan_poster_time,
    plan_ts_offset,
)
from streamify.transcode.media.models import AudioInfo, MediaInfo, VideoInfo
from streamify.v1 import transcode_service_pb2 as tapi
from streamify.v1 import worker_service_pb2 as wapi

# --- enums -------------------------------------------------------------------------------------

JOB_QUEUED = tapi.JobState.JOB_STATE_QUEUED
JOB_RUNNING = tapi.JobState.JOB_STATE_RUNNING
JOB_SUCCEEDED = tapi.JobState.JOB_STATE_SUCCEEDED
JOB_FAILED = tapi.JobState.JOB_STATE_FAILED
JOB_CANCELLED = tapi.JobState.JOB_STATE_CANCELLED
JOB_ACTIVE = frozenset({JOB_QUEUED, JOB_RUNNING})
JOB_TERMINAL = frozenset({JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED})

PENDING = tapi.TaskState.TASK_STATE_PENDING
RUNNING = tapi.TaskState.TASK_STATE_RUNNING
SUCCEEDED = tapi.TaskState.TASK_STATE_SUCCEEDED
FAILED = tapi.TaskState.TASK_STATE_FAILED
CANCELLED = tapi.TaskState.TASK_STATE_CANCELLED

PROBE = tapi.TaskKind.TASK_KIND_PROBE
VIDEO_CHUNK = tapi.TaskKind.TASK_KIND_VIDEO_CHUNK
AUDIO = tapi.TaskKind.TASK_KIND_AUDIO
POSTER = tapi.TaskKind.TASK_KIND_POSTER
ASSEMBLE = tapi.TaskKind.TASK_KIND_ASSEMBLE

PROBE_TASK, AUDIO_TASK, POSTER_TASK, ASSEMBLE_TASK = "probe", "audio", "poster", "assemble"

# Job.published_run once the final (VOD) playlists are being written: no EVENT publication
# may claim a run after that.
FINAL_PUBLISHED = 1 << 30

MANIFEST = "master.m3u8"
MEDIA_PLAYLIST = "index.m3u8"
AUDIO_DIR = "audio"
POSTER_FILE = "poster.jpg"


def chunk_name(index: int) -> str:
    return f"chunk-{index:04d}"


def manifest_path(video_id: str) -> str:
    return f"{media_prefix(video_id)}{MANIFEST}"


def seconds(value: float) -> Duration:
    d = Duration()
    d.FromNanoseconds(round(value * 1e9))
    return d


def to_seconds(d: Duration) -> float:
    value: float = d.seconds + d.nanos / 1e9  # protobuf's Duration is untyped
    return value


# --- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedRendition:
    id: str
    width: int
    height: int
    bitrate: int
    max_bitrate: int
    buffer_size: int
    profile: str
    preset: str


@dataclass(frozen=True)
class PlannedChunk:
    index: int
    start: float
    end: float
    first_segment_index: int
    segment_count: int


@dataclass(frozen=True)
class Plan:
    """What the probe decided; stored as JSON on the job."""

    duration: float
    frame_rate: float
    segment_seconds: float
    ts_offset: float
    rotation_degrees: int
    renditions: list[PlannedRendition]
    chunks: list[PlannedChunk]
    has_audio: bool
    audio_channels: int = 2
    audio_bitrate: int = 128_000
    poster_at: float = 0.0
    source_format: str = ""
    source_codec: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> Plan:
        raw = json.loads(text)
        raw["renditions"] = [PlannedRendition(**r) for r in raw["renditions"]]
        raw["chunks"] = [PlannedChunk(**c) for c in raw["chunks"]]
        return Plan(**raw)

    @property
    def segment_count(self) -> int:
        return sum(c.segment_count for c in self.chunks)

    def segments_before(self, chunk_count: int) -> int:
        """Segments in the first `chunk_count` chunks."""
        return sum(c.segment_count for c in self.chunks[:chunk_count])


def media_info(probe: wapi.ProbeResult, size_bytes: int = 0) -> MediaInfo:
    video = None
    if probe.HasField("video"):
        v = probe.video
        video = VideoInfo(
            codec=v.codec,
            width=v.width,
            height=v.height,
            rotation_degrees=v.rotation_degrees,
            frame_rate=v.frame_rate,
            pixel_format=v.pixel_format,
            frame_count=v.frame_count,
            sample_aspect_ratio=v.sample_aspect_ratio or 1.0,
            duration=to_seconds(v.duration),
        )
    audio = None
    if probe.HasField("audio"):
        a = probe.audio
        audio = AudioInfo(codec=a.codec, sample_rate=a.sample_rate, channels=a.channels)
    return MediaInfo(
        format=probe.format,
        duration=to_seconds(probe.duration),
        video=video,
        audio=audio,
        size_bytes=size_bytes,
        clock_jumps=probe.clock_jumps,
    )


def check_bounds(
    info: MediaInfo, duration: float, frame_rate: float, options: TranscodeSettings
) -> None:
    """Refuses, before anything is planned, a source whose header asks for more work than the
    settings allow (the chunk count is bounded by plan_chunks itself): a file of a few KB that says it lasts for days must not make the
    orchestrator plan, or the workers encode, days of video. MediaError, not retryable."""
    size = info.size_bytes
    if size and size < duration * options.min_source_bytes_per_second:
        raise MediaError(
            "the file's header is wrong or the file is truncated: it is "
            f"{human_bytes(size)} but says it lasts {human_duration(duration)}",
            reason=Reason.CORRUPT,
            retryable=False,
        )
    if duration > options.max_duration_seconds:
        raise MediaError(
            f"the video is too long: it lasts {human_duration(duration)}; the longest this "
            f"server transcodes is {human_duration(options.max_duration_seconds)}",
            reason=Reason.TOO_LARGE,
            retryable=False,
        )
    frames = grid.total_frames(duration, grid.as_rate(frame_rate))
    if frames > options.max_frames:
        raise MediaError(
            f"the video has too many frames: {frames:,} at {frame_rate:g} fps; the most this "
            f"server encodes is {options.max_frames:,}",
            reason=Reason.TOO_LARGE,
            retryable=False,
        )


def make_plan(info: MediaInfo, options: TranscodeSettings) -> Plan:
    """The plan for a probed source. Raises MediaError (not retryable) when it cannot be
    transcoded: no video stream, too large, no duration."""
    renditions = plan_ladder(info, max_width=options.max_width, max_height=options.max_height)
    assert info.video is not None  # plan_ladder raised otherwise
    frame_rate = plan_frame_rate(info)
    duration = plan_duration(info)
    if duration <= 0:
        raise MediaError(
            "the video has no duration: the file may be truncated",
            reason=Reason.CORRUPT,
            retryable=False,
        )
    check_bounds(info, duration, frame_rate, options)
    chunks = plan_chunks(
        duration,
        options.segment_seconds,
        options.segments_per_chunk,
        frame_rate=frame_rate,
        first_chunk_segments=options.first_chunk_segments,
        seekable=not info.clock_jumps,
        max_chunks=options.max_chunks,  # refused before the chunks are made
    )
    return Plan(
        duration=duration,
        frame_rate=frame_rate,
        segment_seconds=options.segment_seconds,
        ts_offset=plan_ts_offset(frame_rate),
        rotation_degrees=info.video.rotation_degrees,
        renditions=[PlannedRendition(**asdict(r)) for r in renditions],
        chunks=[
            PlannedChunk(c.index, c.start, c.end, c.first_segment_index, c.segment_count)
            for c in chunks
        ],
        has_audio=info.audio is not None,
        audio_channels=(info.audio.channels if info.audio else 0) or 2,
        audio_bitrate=options.audio_bitrate,
        poster_at=min(plan_poster_time(duration), max(0.0, duration - 1.0 / frame_rate)),
        source_format=info.format,
        source_codec=info.video.codec,
    )


# --- tasks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedTask:
    name: str
    kind: int
    chunk_index: int = 0
    # A TaskAssignment with only its spec set (the source URL is signed at dispatch).
    spec: wapi.TaskAssignment = field(default_factory=wapi.TaskAssignment)


def probe_task(source: wapi.SourceRef) -> PlannedTask:
    return PlannedTask(
        PROBE_TASK, PROBE, 0, wapi.TaskAssignment(probe=wapi.ProbeSpec(source=source))
    )


def planned_tasks(
    plan: Plan, source: wapi.SourceRef, output: wapi.OutputRef, options: TranscodeSettings
) -> list[PlannedTask]:
    """The tasks a plan adds after the probe, in dispatch order: the audio first (progressive
    playback needs all of it), the chunks in order, the poster, and the assemble step."""
    tasks: list[PlannedTask] = []
    segment = seconds(plan.segment_seconds)
    offset = seconds(plan.ts_offset)
    if plan.has_audio:
        tasks.append(
            PlannedTask(
                AUDIO_TASK,
                AUDIO,
                0,
                wapi.TaskAssignment(
                    audio=wapi.AudioSpec(
                        source=source,
                        bitrate=plan.audio_bitrate,
                        segment_duration=segment,
                        output=output,
                        output_ts_offset=offset,
                        duration=seconds(plan.duration),
                    )
                ),
            )
        )
    renditions = [wapi.RenditionSpec(**asdict(r)) for r in plan.renditions]
    for c in plan.chunks:
        spec = wapi.VideoChunkSpec(
            source=source,
            chunk_index=c.index,
            start=seconds(c.start),
            end=seconds(c.end),
            segment_duration=segment,
            first_segment_index=c.first_segment_index,
            renditions=renditions,
            output=output,
            output_ts_offset=offset,
            rotation_degrees=plan.rotation_degrees,
            frame_rate=plan.frame_rate,
        )
        tasks.append(
            PlannedTask(
                chunk_name(c.index), VIDEO_CHUNK, c.index, wapi.TaskAssignment(video_chunk=spec)
            )
        )
    tasks.append(
        PlannedTask(
            POSTER_TASK,
            POSTER,
            0,
            wapi.TaskAssignment(
                poster=wapi.PosterSpec(
                    source=source,
                    at=seconds(plan.poster_at),
                    max_width=options.poster_max_width,
                    output=output,
                    rotation_degrees=plan.rotation_degrees,
                )
            ),
        )
    )
    tasks.append(PlannedTask(ASSEMBLE_TASK, ASSEMBLE))
    return tasks


def expected_output(kind: int) -> str:
    """The TaskResult oneof a task of this kind must carry."""
    outputs: dict[int, str] = {
        PROBE: "probe",
        VIDEO_CHUNK: "video_chunk",
        AUDIO: "audio",
        POSTER: "poster",
    }
    return outputs[kind]


# --- failures ------------------------------------------------------------------------------------


RETRY, FAIL_JOB = "retry", "fail_job"


def after_failure(attempts: int, max_attempts: int, retryable: bool) -> str:
    """What a failed or lost attempt leads to: back to PENDING, or the job fails (a task
    that cannot be retried, or one that used its last attempt)."""
    if not retryable or attempts >= max_attempts:
        return FAIL_JOB
    return RETRY


def failure_reason(task_name: str, error: str, attempts: int, retryable: bool) -> str:
    """The job's failure reason, for a person."""
    error = error.strip() or "the worker gave no reason"
    if not retryable:
        return error
    what = (
        "the poster"
        if task_name == POSTER_TASK
        else (
            "the audio track"
            if task_name == AUDIO_TASK
            else ("probing the source" if task_name == PROBE_TASK else f"{task_name}")
        )
    )
    return f"{what} failed {attempts} times; last error: {error}"


def lost_worker_error(worker_id: str, why: str) -> str:
    return f"worker {worker_id or '?'} {why} while running the task"


# --- progress ------------------------------------------------------------------------------------


def leading_run(done_chunks: Iterable[int], chunk_count: int) -> int:
    """How many chunks from chunk 0 on are finished without a gap."""
    done = set(done_chunks)
    run = 0
    while run < chunk_count and run in done:
        run += 1
    return run


def playable_run(
    done_chunks: Iterable[int], chunk_count: int, has_audio: bool, audio_done: bool
) -> int:
    """Chunks that can be published as EVENT playlists now: the leading run, once chunk 0 of
    every rendition (one chunk task encodes them all) and the audio (if any) are done; else 0."""
    if has_audio and not audio_done:
        return 0
    return leading_run(done_chunks, chunk_count)


def should_publish(run: int, published_run: int) -> bool:
    return run > 0 and run > published_run and published_run < FINAL_PUBLISHED


def assemble_ready(states: Mapping[str, int]) -> bool:
    """True when every task but `assemble` has SUCCEEDED (and the plan exists)."""
    others = [s for name, s in states.items() if name != ASSEMBLE_TASK]
    return ASSEMBLE_TASK in states and bool(others) and all(s == SUCCEEDED for s in others)


def stage(job_state: int, plan_exists: bool, states: Mapping[str, int]) -> str:
    if job_state == JOB_QUEUED:
        return "queued"
    if job_state == JOB_SUCCEEDED:
        return "done"
    if job_state in (JOB_FAILED, JOB_CANCELLED):
        return "failed" if job_state == JOB_FAILED else "cancelled"
    if not plan_exists:
        return "probing"
    if assemble_ready(states) or states.get(ASSEMBLE_TASK) == RUNNING:
        return "assembling"
    return "encoding"
