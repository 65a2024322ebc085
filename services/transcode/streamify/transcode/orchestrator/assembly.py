"""Playlists from task results (pure): the media playlist of every rendition and of the audio,
and the master playlist, for the first `run` chunks (EVENT, still growing) or for all of them
(VOD with ENDLIST). Also the renditions reported to the Metadata service.

What runs when, for one job (dispatch.Orchestrator):
* `publish`, each time the leading run of finished chunks grows (once chunk 0 and the audio
  are done): the EVENT playlists of that run, written, and reported with PROCESSING so the
  video plays while it is encoded. Not once every task but `assemble` is done: the final
  playlists replace them at once.
* `finalize` (the assemble task), once: `final_playlists`, written, and their
  `processing_result` stored with the task; the READY report reads it from there (a re-sent
  READY assembles nothing). The one exception: a replica whose EVENT write raced another
  replica's finalize writes the final playlists again, so that they are the last word.

URIs in playlists are relative: `master.m3u8` -> `720p/index.m3u8` -> `seg_00000.m4s`, all
under `videos/{id}/`, so the CDN serves the tree as it is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from streamify.core import storage_keys
from streamify.transcode.media.models import Segment
from streamify.transcode.media.playlists import (
    AudioRendition,
    Bandwidth,
    Variant,
    master_playlist,
    media_playlist,
)
from streamify.transcode.orchestrator import dag
from streamify.transcode.orchestrator.dag import Plan
from streamify.v1 import metadata_service_pb2 as meta
from streamify.v1 import video_pb2
from streamify.v1 import worker_service_pb2 as wapi

PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
GROWING_CACHE_CONTROL = "public, max-age=2"
FINAL_CACHE_CONTROL = "public, max-age=60"


class AssemblyError(Exception):
    """The task results do not add up to a playable ladder (a worker reported a gap)."""


@dataclass(frozen=True)
class PlaylistFile:
    key: str
    body: str
    cache_control: str


@dataclass(frozen=True)
class Assembled:
    files: list[PlaylistFile]  # media playlists first, the master last
    renditions: list[video_pb2.Rendition]  # highest first
    segment_count: int  # video segments per rendition covered

    @property
    def master(self) -> PlaylistFile:
        return self.files[-1]


def _segments(infos: Iterable[wapi.SegmentInfo], limit: int | None = None) -> list[Segment]:
    out = [
        Segment(
            index=s.index,
            path=PurePosixPath(s.key),
            duration=dag.to_seconds(s.duration),
            size_bytes=s.size_bytes,
        )
        for s in infos
        if limit is None or s.index < limit
    ]
    return sorted(out, key=lambda s: s.index)


def _check(what: str, segments: list[Segment], expected: int) -> None:
    indices = [s.index for s in segments]
    if indices != list(range(expected)):
        missing = sorted(set(range(expected)) - set(indices))
        detail = f"segment {missing[0]} is missing" if missing else "its segments do not line up"
        raise AssemblyError(f"the encoded output is incomplete: {what}: {detail}")


def _init_uri(init_key: str) -> str:
    return PurePosixPath(init_key).name if init_key else "init.mp4"


def assemble(
    video_id: str,
    plan: Plan,
    chunks: Mapping[int, wapi.ChunkResult],
    audio: wapi.AudioResult | None,
    run: int,
    *,
    final: bool,
) -> Assembled:
    """Playlists for chunks [0, run). `final`: run must be every chunk; VOD + ENDLIST."""
    if run < 1 or run > len(plan.chunks):
        raise ValueError(f"run must be 1..{len(plan.chunks)}, not {run}")
    if final and run != len(plan.chunks):
        raise ValueError("the final playlists cover every chunk")
    missing = [i for i in range(run) if i not in chunks]
    if missing:
        raise ValueError(f"chunk {missing[0]} has no result")
    if plan.has_audio and audio is None:
        raise ValueError("the audio has no result")
    prefix = storage_keys.media_prefix(video_id)
    cache = FINAL_CACHE_CONTROL if final else GROWING_CACHE_CONTROL
    expected = plan.segments_before(run)
    files: list[PlaylistFile] = []

    audio_rendition = None
    if plan.has_audio:
        assert audio is not None
        audio_segments = _segments(audio.segments, None if final else expected)
        if final:
            if not audio_segments:
                raise AssemblyError("the encoded output is incomplete: the audio has no segments")
            _check("audio", audio_segments, len(audio_segments))
        files.append(
            PlaylistFile(
                f"{prefix}{dag.AUDIO_DIR}/{dag.MEDIA_PLAYLIST}",
                media_playlist(
                    audio_segments,
                    target_duration=plan.segment_seconds,
                    init_uri=_init_uri(audio.init_key),
                    ended=final,
                ),
                cache,
            )
        )
        audio_rendition = AudioRendition(
            uri=f"{dag.AUDIO_DIR}/{dag.MEDIA_PLAYLIST}",
            codecs=audio.codecs or "mp4a.40.2",
            bandwidth=Bandwidth.of(audio_segments),
            channels=plan.audio_channels,
        )

    variants: list[Variant] = []
    renditions: list[video_pb2.Rendition] = []
    for r in plan.renditions:
        infos: list[wapi.SegmentInfo] = []
        codecs, init_key = "", ""
        for i in range(run):
            entry = next((rc for rc in chunks[i].renditions if rc.rendition_id == r.id), None)
            if entry is None:
                raise AssemblyError(
                    f"the encoded output is incomplete: chunk {i} has no rendition {r.id}"
                )
            infos.extend(entry.segments)
            codecs = codecs or entry.codecs
            init_key = init_key or entry.init_key
        segments = _segments(infos)
        _check(f"rendition {r.id}", segments, expected)
        files.append(
            PlaylistFile(
                f"{prefix}{r.id}/{dag.MEDIA_PLAYLIST}",
                media_playlist(
                    segments,
                    target_duration=plan.segment_seconds,
                    init_uri=_init_uri(init_key),
                    ended=final,
                ),
                cache,
            )
        )
        bandwidth = Bandwidth.of(segments)
        codecs = codecs or "avc1.640028"
        variants.append(
            Variant(
                uri=f"{r.id}/{dag.MEDIA_PLAYLIST}",
                width=r.width,
                height=r.height,
                codecs=codecs,
                frame_rate=plan.frame_rate,
                bandwidth=bandwidth,
            )
        )
        peak, average = bandwidth.peak, bandwidth.average
        all_codecs = codecs
        if audio_rendition is not None:
            peak += audio_rendition.bandwidth.peak
            average += audio_rendition.bandwidth.average
            all_codecs = f"{codecs},{audio_rendition.codecs}"
        renditions.append(
            video_pb2.Rendition(
                id=r.id,
                width=r.width,
                height=r.height,
                bandwidth=peak,
                average_bandwidth=average,
                codecs=all_codecs,
                frame_rate=plan.frame_rate,
            )
        )
    files.append(
        PlaylistFile(f"{prefix}{dag.MANIFEST}", master_playlist(variants, audio_rendition), cache)
    )
    return Assembled(files, renditions, expected)


def final_playlists(
    video_id: str,
    plan: Plan,
    chunks: Mapping[int, wapi.ChunkResult],
    audio: wapi.AudioResult | None,
) -> Assembled:
    """The VOD playlists of every chunk: what the assemble task writes."""
    return assemble(video_id, plan, chunks, audio, len(plan.chunks), final=True)


def processing_result(
    video_id: str, plan: Plan, assembled: Assembled, poster_key: str = ""
) -> meta.ProcessingResult:
    """What the Metadata service is told of these playlists (the poster once it exists)."""
    return meta.ProcessingResult(
        renditions=assembled.renditions,
        duration=dag.seconds(plan.duration),
        manifest_path=dag.manifest_path(video_id),
        poster_path=poster_key,
    )
