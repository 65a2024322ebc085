"""Plain dataclasses exchanged by the media functions (mirrors of the worker protocol)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int  # coded width in pixels
    height: int  # coded height in pixels
    rotation_degrees: int  # clockwise, one of 0, 90, 180, 270
    frame_rate: float  # average frames per second (0.0 if unknown)
    pixel_format: str
    frame_count: int  # 0 if the container does not say
    sample_aspect_ratio: float = 1.0  # pixel width / pixel height (anamorphic sources != 1)
    duration: float = 0.0  # of the video stream alone, seconds (0.0 if unknown)

    @property
    def display_width(self) -> int:
        """Width as shown to a viewer: square pixels, after rotation."""
        w, h = self._square_pixels()
        return h if self.rotation_degrees in (90, 270) else w

    @property
    def display_height(self) -> int:
        w, h = self._square_pixels()
        return w if self.rotation_degrees in (90, 270) else h

    def _square_pixels(self) -> tuple[int, int]:
        if self.sample_aspect_ratio > 0 and abs(self.sample_aspect_ratio - 1.0) > 1e-3:
            return round(self.width * self.sample_aspect_ratio), self.height
        return self.width, self.height


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class MediaInfo:
    format: str  # container format name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration: float  # seconds
    video: VideoInfo | None
    audio: AudioInfo | None
    size_bytes: int = 0  # 0 if unknown
    clock_jumps: int = 0  # timestamp discontinuities corrected (media.timeline); duration is fixed


@dataclass(frozen=True)
class Rendition:
    """One rung of the ladder: what to encode."""

    id: str  # e.g. "720p"
    width: int  # even
    height: int  # even
    bitrate: int  # bits per second
    max_bitrate: int  # VBV max rate, bits per second
    buffer_size: int  # VBV buffer, bits
    profile: str = "high"  # H.264 profile
    preset: str = "veryfast"  # x264 preset


@dataclass(frozen=True)
class Chunk:
    """A time range of the source, on the one segment grid of the whole video."""

    index: int
    start: float  # seconds, source time (relative to the source's start)
    end: float  # seconds, exclusive
    first_segment_index: int
    segment_count: int = 0


@dataclass(frozen=True)
class Segment:
    index: int  # within the whole rendition
    path: PurePath  # a local file (the encoders) or a storage key (the orchestrator's playlists)
    duration: float  # seconds
    size_bytes: int


@dataclass(frozen=True)
class RenditionChunkOutput:
    rendition_id: str
    segments: list[Segment]
    init_path: Path
    codecs: str  # RFC 6381, read from the encoded SPS, e.g. "avc1.64001f"
    width: int
    height: int


@dataclass(frozen=True)
class AudioOutput:
    segments: list[Segment]
    init_path: Path
    codecs: str  # "mp4a.40.2"
    sample_rate: int
    channels: int
    bitrate: int
    duration: float  # seconds of audio written (excluding encoder priming)
