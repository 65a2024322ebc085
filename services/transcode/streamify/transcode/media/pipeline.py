"""Everything on one machine: probe -> plan -> chunks -> audio -> poster -> playlists.

For tests and benchmarks; the real orchestrator runs the same functions as separate tasks on
workers and writes the playlists itself.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from streamify.transcode.media.audio import encode_audio
from streamify.transcode.media.ladder import (
    DEFAULT_MAX_HEIGHT,
    DEFAULT_MAX_WIDTH,
    DEFAULT_RUNGS,
    Rung,
    plan_chunks,
    plan_duration,
    plan_frame_rate,
    plan_ladder,
    plan_poster_time,
    plan_ts_offset,
)
from streamify.transcode.media.models import (
    AudioOutput,
    Chunk,
    MediaInfo,
    Rendition,
    RenditionChunkOutput,
    Segment,
)
from streamify.transcode.media.playlists import (
    AudioRendition,
    Bandwidth,
    Variant,
    master_playlist,
    media_playlist,
)
from streamify.transcode.media.poster import extract_poster
from streamify.transcode.media.probe import probe
from streamify.transcode.media.video_chunk import encode_video_chunk

MASTER_NAME = "master.m3u8"
MEDIA_NAME = "index.m3u8"
AUDIO_DIR = "audio"
POSTER_NAME = "poster.jpg"


@dataclass(frozen=True)
class RenditionResult:
    rendition: Rendition
    segments: list[Segment]
    init_path: Path
    codecs: str
    playlist: Path


@dataclass(frozen=True)
class TranscodeResult:
    info: MediaInfo
    frame_rate: float
    ts_offset: float
    chunks: list[Chunk]
    renditions: list[RenditionResult]
    audio: AudioOutput | None
    poster: Path
    poster_size: tuple[int, int]
    master: Path
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per stage


def transcode_local(
    source: str,
    out_dir: Path,
    *,
    segment_seconds: float = 4.0,
    chunk_seconds: float = 16.0,
    workers: int = 1,
    rungs: Sequence[Rung] = DEFAULT_RUNGS,
    max_width: int = DEFAULT_MAX_WIDTH,
    max_height: int = DEFAULT_MAX_HEIGHT,
    audio_bitrate: int = 128_000,
    poster_max_width: int = 1280,
    encoder_threads: int | None = None,
) -> TranscodeResult:
    """Transcode ``source`` into an HLS ladder under ``out_dir`` (``master.m3u8``,
    ``<rung>/index.m3u8``, ``audio/index.m3u8``, ``poster.jpg``).

    ``workers`` > 1 runs chunk, audio and poster tasks in that many processes at once.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    info = probe(source)
    renditions = plan_ladder(info, rungs, max_width=max_width, max_height=max_height)
    assert info.video is not None  # plan_ladder raised otherwise
    frame_rate = plan_frame_rate(info)
    ts_offset = plan_ts_offset(frame_rate)
    per_chunk = max(1, round(chunk_seconds / segment_seconds))
    chunks = plan_chunks(
        plan_duration(info),
        segment_seconds,
        per_chunk,
        frame_rate=frame_rate,
        seekable=not info.clock_jumps,
    )
    rotation = info.video.rotation_degrees
    timings["plan"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    chunk_jobs: list[_Job] = [
        (
            encode_video_chunk,
            (source, chunk, renditions, out_dir),
            dict(
                segment_seconds=segment_seconds,
                frame_rate=frame_rate,
                rotation=rotation,
                ts_offset=ts_offset,
                encoder_threads=encoder_threads,
            ),
        )
        for chunk in chunks
    ]
    audio_job: _Job = (
        encode_audio,
        (source, out_dir / AUDIO_DIR),
        dict(
            segment_seconds=segment_seconds,
            bitrate=audio_bitrate,
            ts_offset=ts_offset,
            duration=chunks[-1].end,
        ),
    )
    poster_path = out_dir / POSTER_NAME
    poster_job: _Job = (
        extract_poster,
        (source, poster_path),
        dict(
            at_seconds=plan_poster_time(plan_duration(info)),
            max_width=poster_max_width,
            rotation=rotation,
        ),
    )
    jobs = [*chunk_jobs, poster_job] + ([audio_job] if info.audio is not None else [])
    results = _run_all(jobs, workers)
    timings["encode"] = time.perf_counter() - t1

    # In the jobs' order: each chunk's outputs (encode_video_chunk), the poster's size
    # (extract_poster), then the audio's (encode_audio); one list of objects, hence the casts.
    chunk_outputs = cast("list[list[RenditionChunkOutput]]", results[: len(chunks)])
    poster_size = cast("tuple[int, int]", results[len(chunks)])
    audio = cast("AudioOutput", results[len(chunks) + 1]) if info.audio is not None else None

    per_rendition = []
    for i, rendition in enumerate(renditions):
        parts = [outputs[i] for outputs in chunk_outputs]
        codecs = {p.codecs for p in parts}
        if len(codecs) != 1:
            raise RuntimeError(f"{rendition.id}: chunks disagree on codecs {sorted(codecs)}")
        segments = sorted((s for p in parts for s in p.segments), key=lambda s: s.index)
        playlist = out_dir / rendition.id / MEDIA_NAME
        playlist.write_text(media_playlist(segments, target_duration=segment_seconds, ended=True))
        per_rendition.append(
            RenditionResult(rendition, segments, parts[0].init_path, codecs.pop(), playlist)
        )
    audio_rendition = None
    if audio is not None:
        (out_dir / AUDIO_DIR / MEDIA_NAME).write_text(
            media_playlist(audio.segments, target_duration=segment_seconds, ended=True)
        )
        audio_rendition = AudioRendition(
            uri=f"{AUDIO_DIR}/{MEDIA_NAME}",
            codecs=audio.codecs,
            bandwidth=Bandwidth.of(audio.segments),
            channels=audio.channels,
        )
    variants = [
        Variant(
            uri=f"{r.rendition.id}/{MEDIA_NAME}",
            width=r.rendition.width,
            height=r.rendition.height,
            codecs=r.codecs,
            frame_rate=frame_rate,
            bandwidth=Bandwidth.of(r.segments),
        )
        for r in sorted(per_rendition, key=lambda r: r.rendition.bitrate)
    ]
    master = out_dir / MASTER_NAME
    master.write_text(master_playlist(variants, audio_rendition))
    timings["total"] = time.perf_counter() - t0
    return TranscodeResult(
        info=info,
        frame_rate=frame_rate,
        ts_offset=ts_offset,
        chunks=chunks,
        renditions=per_rendition,
        audio=audio,
        poster=poster_path,
        poster_size=poster_size,
        master=master,
        timings=timings,
    )


# A function for the pool to run: (fn, args, kwargs).
_Job = tuple[Callable[..., object], tuple[object, ...], dict[str, object]]


def _call(job: _Job) -> object:
    fn, args, kwargs = job
    return fn(*args, **kwargs)


def _run_all(jobs: list[_Job], workers: int) -> list[object]:
    if workers <= 1:
        return [_call(job) for job in jobs]
    # spawn: the parent may hold PyAV/x264 threads, which fork() would copy half-alive.
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_call, jobs))
