"""Conversions between the worker protocol (protobuf) and the media package's dataclasses.

Pure functions, no I/O: the child process that runs a task (``worker_tasks``) turns the
assignment's spec into media calls with these, and the media outputs back into results. Object
keys of the outputs are chosen here, in one place:

    {prefix}{rendition_id}/init.mp4          video init segment (one per rendition)
    {prefix}{rendition_id}/seg_{index:05d}.m4s
    {prefix}audio/init.mp4, {prefix}audio/seg_{index:05d}.m4s
    {prefix}poster.jpg

A re-run of a task writes exactly the same keys (segment indexes are global to the video).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from google.protobuf.duration_pb2 import Duration

from streamify.transcode.media.models import (
    AudioOutput,
    Chunk,
    MediaInfo,
    Rendition,
    RenditionChunkOutput,
    Segment,
)
from streamify.v1 import worker_service_pb2 as pb

AUDIO_DIR = "audio"
INIT_NAME = "init.mp4"
POSTER_NAME = "poster.jpg"

INIT_CONTENT_TYPE = "video/mp4"
SEGMENT_CONTENT_TYPE = "video/iso.segment"
AUDIO_INIT_CONTENT_TYPE = "audio/mp4"
POSTER_CONTENT_TYPE = "image/jpeg"
# Segments and init segments never change under their key (a re-run writes the same bytes
# or, for a new encode, the video's prefix changes): cache them forever.
MEDIA_CACHE_CONTROL = "public, max-age=31536000, immutable"
POSTER_CACHE_CONTROL = "public, max-age=86400"


class SpecError(ValueError):
    """The assignment cannot be run as given; running it again cannot help."""


# --- durations ------------------------------------------------------------------------------


def seconds(d: Duration) -> float:
    value: float = d.seconds + d.nanos / 1e9  # protobuf's Duration is untyped
    return value


def duration(value: float) -> Duration:
    d = Duration()
    d.FromNanoseconds(round(value * 1e9))
    return d


# --- keys --------------------------------------------------------------------------------------


def _prefix(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def init_key(prefix: str, rendition_id: str) -> str:
    return f"{_prefix(prefix)}{rendition_id}/{INIT_NAME}"


def segment_key(prefix: str, rendition_id: str, index: int) -> str:
    return f"{_prefix(prefix)}{rendition_id}/seg_{index:05d}.m4s"


def poster_key(prefix: str) -> str:
    return f"{_prefix(prefix)}{POSTER_NAME}"


# --- specs -> media arguments --------------------------------------------------------------


def _check_output(output: pb.OutputRef, what: str) -> None:
    if not output.bucket:
        raise SpecError(f"the {what} task has no output bucket")


def _check_source(source: pb.SourceRef, what: str) -> None:
    if not source.url and not (source.bucket and source.key):
        raise SpecError(f"the {what} task has no source (neither a URL nor a bucket and key)")


def rendition_from_spec(spec: pb.RenditionSpec) -> Rendition:
    if not spec.id or "/" in spec.id or spec.id in (".", "..", AUDIO_DIR):
        raise SpecError(f"invalid rendition id {spec.id!r}")
    if spec.width <= 0 or spec.height <= 0 or spec.width % 2 or spec.height % 2:
        raise SpecError(
            f"rendition {spec.id}: width and height must be positive and even, "
            f"got {spec.width}x{spec.height}"
        )
    if spec.bitrate <= 0:
        raise SpecError(f"rendition {spec.id}: the bitrate must be positive")
    return Rendition(
        id=spec.id,
        width=spec.width,
        height=spec.height,
        bitrate=spec.bitrate,
        max_bitrate=spec.max_bitrate or spec.bitrate,
        buffer_size=spec.buffer_size or 2 * (spec.max_bitrate or spec.bitrate),
        profile=spec.profile or "high",
        preset=spec.preset or "veryfast",
    )


@dataclass(frozen=True)
class VideoChunkArgs:
    """Everything ``media.encode_video_chunk`` needs besides the source and the directory."""

    chunk: Chunk
    renditions: list[Rendition]
    segment_seconds: float
    frame_rate: float
    rotation: int
    ts_offset: float


def video_chunk_args(spec: pb.VideoChunkSpec) -> VideoChunkArgs:
    _check_source(spec.source, "video chunk")
    _check_output(spec.output, "video chunk")
    start, end = seconds(spec.start), seconds(spec.end)
    segment_seconds = seconds(spec.segment_duration)
    if segment_seconds <= 0:
        raise SpecError("the video chunk task has no segment duration")
    if start < 0 or end <= start:
        raise SpecError(f"the video chunk's time range is empty or negative ({start}..{end} s)")
    if not math.isfinite(spec.frame_rate) or spec.frame_rate <= 0:
        raise SpecError("the video chunk task has no frame rate")
    if spec.rotation_degrees % 90 or spec.chunk_index < 0 or spec.first_segment_index < 0:
        raise SpecError("the video chunk task has an invalid rotation, chunk or segment index")
    if not spec.renditions:
        raise SpecError("the video chunk task has no renditions")
    renditions = [rendition_from_spec(r) for r in spec.renditions]
    if len({r.id for r in renditions}) != len(renditions):
        raise SpecError("the video chunk task names a rendition twice")
    return VideoChunkArgs(
        chunk=Chunk(
            index=spec.chunk_index,
            start=start,
            end=end,
            first_segment_index=spec.first_segment_index,
        ),
        renditions=renditions,
        segment_seconds=segment_seconds,
        frame_rate=spec.frame_rate,
        rotation=spec.rotation_degrees % 360,
        ts_offset=seconds(spec.output_ts_offset),
    )


@dataclass(frozen=True)
class AudioArgs:
    segment_seconds: float
    bitrate: int
    ts_offset: float
    duration: float | None


def audio_args(spec: pb.AudioSpec) -> AudioArgs:
    _check_source(spec.source, "audio")
    _check_output(spec.output, "audio")
    segment_seconds = seconds(spec.segment_duration)
    if segment_seconds <= 0:
        raise SpecError("the audio task has no segment duration")
    end = seconds(spec.duration) if spec.HasField("duration") else 0.0
    return AudioArgs(
        segment_seconds=segment_seconds,
        bitrate=spec.bitrate or 128_000,
        ts_offset=seconds(spec.output_ts_offset),
        duration=end if end > 0 else None,
    )


@dataclass(frozen=True)
class PosterArgs:
    at_seconds: float
    max_width: int
    rotation: int


def poster_args(spec: pb.PosterSpec) -> PosterArgs:
    _check_source(spec.source, "poster")
    _check_output(spec.output, "poster")
    if spec.rotation_degrees % 90:
        raise SpecError("the poster task has an invalid rotation")
    return PosterArgs(
        at_seconds=max(0.0, seconds(spec.at)),
        max_width=spec.max_width if spec.max_width > 0 else 1280,
        rotation=spec.rotation_degrees % 360,
    )


# --- media outputs -> results ---------------------------------------------------------------


def probe_result(info: MediaInfo) -> pb.ProbeResult:
    result = pb.ProbeResult(
        format=info.format, duration=duration(info.duration), clock_jumps=info.clock_jumps
    )
    if info.video is not None:
        v = info.video
        result.video.CopyFrom(
            pb.VideoStreamInfo(
                codec=v.codec,
                width=v.width,
                height=v.height,
                rotation_degrees=v.rotation_degrees,
                frame_rate=v.frame_rate,
                pixel_format=v.pixel_format,
                frame_count=v.frame_count,
                duration=duration(v.duration),
                sample_aspect_ratio=v.sample_aspect_ratio,
            )
        )
    if info.audio is not None:
        a = info.audio
        result.audio.CopyFrom(
            pb.AudioStreamInfo(codec=a.codec, sample_rate=a.sample_rate, channels=a.channels)
        )
    return result


def segment_infos(
    segments: Sequence[Segment], prefix: str, rendition_id: str
) -> list[pb.SegmentInfo]:
    return [
        pb.SegmentInfo(
            index=s.index,
            key=segment_key(prefix, rendition_id, s.index),
            duration=duration(s.duration),
            size_bytes=s.size_bytes,
        )
        for s in segments
    ]


def chunk_result(outputs: Sequence[RenditionChunkOutput], prefix: str) -> pb.ChunkResult:
    return pb.ChunkResult(
        renditions=[
            pb.RenditionChunk(
                rendition_id=o.rendition_id,
                segments=segment_infos(o.segments, prefix, o.rendition_id),
                codecs=o.codecs,
                init_key=init_key(prefix, o.rendition_id),
            )
            for o in outputs
        ]
    )


def audio_result(output: AudioOutput, prefix: str) -> pb.AudioResult:
    return pb.AudioResult(
        segments=segment_infos(output.segments, prefix, AUDIO_DIR),
        codecs=output.codecs,
        init_key=init_key(prefix, AUDIO_DIR),
    )


def poster_result(prefix: str, width: int, height: int) -> pb.PosterResult:
    return pb.PosterResult(key=poster_key(prefix), width=width, height=height)


@dataclass(frozen=True)
class Upload:
    """One local file to put in storage."""

    path: str
    key: str
    content_type: str
    cache_control: str


def chunk_uploads(outputs: Sequence[RenditionChunkOutput], prefix: str) -> list[Upload]:
    """Init segment + segments of every rendition (init first: a player needs it first)."""
    uploads: list[Upload] = []
    for o in outputs:
        uploads.append(
            Upload(
                str(o.init_path),
                init_key(prefix, o.rendition_id),
                INIT_CONTENT_TYPE,
                MEDIA_CACHE_CONTROL,
            )
        )
        uploads.extend(
            Upload(
                str(s.path),
                segment_key(prefix, o.rendition_id, s.index),
                SEGMENT_CONTENT_TYPE,
                MEDIA_CACHE_CONTROL,
            )
            for s in o.segments
        )
    return uploads


def audio_uploads(output: AudioOutput, prefix: str) -> list[Upload]:
    return [
        Upload(
            str(output.init_path),
            init_key(prefix, AUDIO_DIR),
            AUDIO_INIT_CONTENT_TYPE,
            MEDIA_CACHE_CONTROL,
        ),
        *(
            Upload(
                str(s.path),
                segment_key(prefix, AUDIO_DIR, s.index),
                SEGMENT_CONTENT_TYPE,
                MEDIA_CACHE_CONTROL,
            )
            for s in output.segments
        ),
    ]


def spec_kind(assignment: pb.TaskAssignment) -> str:
    """``probe``, ``video_chunk``, ``audio``, ``poster`` or ``""`` (no spec)."""
    return assignment.WhichOneof("spec") or ""


def describe_assignment(assignment: pb.TaskAssignment) -> Mapping[str, object]:
    """Log fields for an assignment (never the pre-signed URL: it carries credentials)."""
    return {
        "task_id": assignment.task_id,
        "kind": spec_kind(assignment),
        "attempt": assignment.attempt,
    }
