"""Plan the work: the ladder of renditions, the output frame rate, the chunk grid."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from streamify.transcode.media import grid
from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.media.models import Chunk, MediaInfo, Rendition


@dataclass(frozen=True)
class Rung:
    """A rung of the ladder: a landscape box (long x short side) and its bitrate.

    Portrait sources use the box turned on its side, so a rotated 1080x1920 phone video gets
    1080x1920, 720x1280... : rungs are chosen by the short side.
    """

    id: str
    long_side: int
    short_side: int
    bitrate: int
    profile: str = "high"
    preset: str = "veryfast"


DEFAULT_RUNGS: tuple[Rung, ...] = (
    Rung("1080p", 1920, 1080, 5_000_000),
    Rung("720p", 1280, 720, 2_800_000),
    Rung("480p", 854, 480, 1_400_000),
    Rung("360p", 640, 360, 800_000, profile="main"),
    Rung("240p", 426, 240, 400_000, profile="main"),
)

# Sources up to 8K UHD are accepted (and downscaled into the ladder, which never upscales).
DEFAULT_MAX_WIDTH = 7680
DEFAULT_MAX_HEIGHT = 4320
# VBV: peak rate and buffer relative to the target bitrate.
MAX_BITRATE_FACTOR = 1.5
BUFFER_SIZE_FACTOR = 2.0
# A rung may be up to this much larger than the source (1280x718 still gets "720p", at its own
# size): never a real upscale, it avoids losing a rung to a few pixels of cropping.
_UPSCALE_TOLERANCE = 1.02
_MIN_BITRATE = 100_000

STANDARD_FRAME_RATES: tuple[Fraction, ...] = (
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
    Fraction(48),
    Fraction(50),
    Fraction(60000, 1001),
    Fraction(60),
)
DEFAULT_FRAME_RATE = 30.0
MAX_FRAME_RATE = 60.0


def plan_ladder(
    info: MediaInfo,
    rungs: Sequence[Rung] = DEFAULT_RUNGS,
    *,
    max_width: int = DEFAULT_MAX_WIDTH,
    max_height: int = DEFAULT_MAX_HEIGHT,
) -> list[Rendition]:
    """The renditions to encode, largest first; never larger than the source.

    Dimensions are display dimensions (after rotation, square pixels), even, aspect ratio kept.
    A source smaller than every rung gets one rendition at its own size. Raises MediaError
    (not retryable) for a source without video or beyond ``max_width`` x ``max_height``
    (orientation-independent: a portrait 2160x3840 passes a 3840x2160 limit).
    """
    video = info.video
    if video is None:
        raise MediaError(
            "the file is not a video: no video stream found",
            reason=Reason.NO_VIDEO_STREAM,
            retryable=False,
        )
    src_w, src_h = video.display_width, video.display_height
    if src_w < 2 or src_h < 2:
        raise MediaError(
            f"the video is {src_w}x{src_h}, too small to encode",
            reason=Reason.UNSUPPORTED,
            retryable=False,
        )
    limit_long, limit_short = max(max_width, max_height), min(max_width, max_height)
    if max(src_w, src_h) > limit_long or min(src_w, src_h) > limit_short:
        raise MediaError(
            f"the video is {src_w}x{src_h}, larger than the maximum {max_width}x{max_height} "
            "this service accepts (in either orientation): export it at that size or smaller",
            reason=Reason.TOO_LARGE,
            retryable=False,
        )
    landscape = src_w >= src_h
    out: list[Rendition] = []
    seen: set[tuple[int, int]] = set()
    for rung in sorted(rungs, key=lambda r: r.short_side, reverse=True):
        box_w, box_h = (
            (rung.long_side, rung.short_side) if landscape else (rung.short_side, rung.long_side)
        )
        scale = min(box_w / src_w, box_h / src_h)
        if scale > _UPSCALE_TOLERANCE:
            continue
        scale = min(scale, 1.0)
        w, h = _even(src_w * scale, src_w), _even(src_h * scale, src_h)
        if (w, h) in seen:
            continue
        seen.add((w, h))
        out.append(_rendition(rung.id, w, h, rung.bitrate, rung.profile, rung.preset))
    if not out:
        smallest = min(rungs, key=lambda r: r.short_side)
        w, h = _even(src_w, src_w), _even(src_h, src_h)
        area = smallest.long_side * smallest.short_side
        bitrate = max(_MIN_BITRATE, int(smallest.bitrate * (w * h) / area) // 1000 * 1000)
        out.append(_rendition(f"{min(w, h)}p", w, h, bitrate, "main", smallest.preset))
    return out


def _even(x: float, limit: int) -> int:
    """Nearest even integer to ``x``, at least 2, never above ``limit`` rounded down to even."""
    v = max(2, 2 * round(x / 2))
    return min(v, max(2, limit - limit % 2))


def _rendition(rid: str, w: int, h: int, bitrate: int, profile: str, preset: str) -> Rendition:
    return Rendition(
        id=rid,
        width=w,
        height=h,
        bitrate=bitrate,
        max_bitrate=int(bitrate * MAX_BITRATE_FACTOR),
        buffer_size=int(bitrate * BUFFER_SIZE_FACTOR),
        profile=profile,
        preset=preset,
    )


def plan_frame_rate(info: MediaInfo, *, max_frame_rate: float = MAX_FRAME_RATE) -> float:
    """The constant output frame rate: the source's average rate, snapped to a standard rate
    when within 3% (VFR phone clips report 29.6), halved until it is at most ``max_frame_rate``
    (120 -> 60), 30 if unknown."""
    fps = info.video.frame_rate if info.video else 0.0
    if not fps or not math.isfinite(fps) or fps < 1:
        return DEFAULT_FRAME_RATE
    rate = Fraction(fps)
    while rate > max_frame_rate * 1.001:
        rate /= 2
    nearest = min(STANDARD_FRAME_RATES, key=lambda r: abs(r - rate))
    if abs(nearest - rate) / nearest <= 0.03:
        rate = nearest
    return float(grid.as_rate(rate))


# A container duration longer than the video stream's by less than this is audio padding or
# priming (AAC frames round up), not content: the video is not held over it.
_DURATION_SLACK = 0.5


def plan_duration(info: MediaInfo) -> float:
    """The duration to encode, video and audio alike: the video stream's own duration when
    the container's is longer only by codec padding, else the container's (a soundtrack that
    outlasts the picture keeps the last picture on screen)."""
    video = info.video.duration if info.video else 0.0
    if video > 0 and (info.duration <= 0 or info.duration - video < _DURATION_SLACK):
        return video
    return info.duration


def plan_ts_offset(frame_rate: float) -> float:
    """The constant ``output_ts_offset`` for every chunk and the audio: larger than x264's
    B-frame decode delay and the AAC priming, so no output starts below zero and libavformat
    never shifts one output differently from another (recipes §10)."""
    return round(max(1.0, 4.0 / frame_rate), 3)


POSTER_FRACTION = 0.10  # a frame at 10% of the duration: past fade-ins and black intros
POSTER_MAX_AT = 30.0  # seconds, so long videos do not seek far
SHORT_CLIP = 2.0  # seconds: below this, the first frame


def plan_poster_time(duration: float) -> float:
    """Where to take the poster from, in source seconds."""
    if duration < SHORT_CLIP:
        return 0.0
    return min(duration * POSTER_FRACTION, POSTER_MAX_AT)


def _segment_grid(duration: float, seg: Fraction, frame_rate: float | None) -> tuple[int, float]:
    """(number of segments, end of the video): on the output frame grid with a frame rate."""
    if frame_rate:
        rate = grid.as_rate(frame_rate)
        frames = grid.total_frames(duration, rate)
        return grid.segment_count(frames, seg, rate), float(Fraction(frames) / rate)
    return max(1, math.ceil(duration / float(seg) - 1e-9)), duration


def plan_chunks(
    duration: float,
    segment_seconds: float = 4.0,
    segments_per_chunk: int = 4,
    *,
    frame_rate: float | None = None,
    first_chunk_segments: int | None = None,
    seekable: bool = True,
    max_chunks: int | None = None,
) -> list[Chunk]:
    """Split ``duration`` seconds into chunks of whole segments on one fixed grid.

    With ``frame_rate`` the grid is the output frame grid: the duration is rounded to whole
    frames and no segment is left without a frame; the last chunk ends at the last frame's end.
    ``first_chunk_segments`` makes the first chunk shorter, so the video is playable sooner.
    ``seekable`` False (a source whose clock jumps, see media.timeline: a time no longer names
    one place in the file) gives ONE chunk, read from the start.
    More than ``max_chunks`` chunks is a MediaError (too large), raised before any is made: a
    header claiming days of video must not allocate days of chunks.
    """
    if duration <= 0:
        raise MediaError("the video has no duration", reason=Reason.CORRUPT, retryable=False)
    if segment_seconds <= 0 or segments_per_chunk < 1:
        raise ValueError("segment_seconds must be > 0 and segments_per_chunk >= 1")
    seg = grid.as_seconds(segment_seconds)
    count, end_of_video = _segment_grid(duration, seg, frame_rate)
    head = first_chunk_segments or segments_per_chunk
    if not seekable:
        head = count
    total = 1 if head >= count else 1 + math.ceil((count - head) / segments_per_chunk)
    if max_chunks is not None and total > max_chunks:
        raise MediaError(
            f"the video needs too many chunk tasks: {total:,}; the most this server plans "
            f"is {max_chunks:,}",
            reason=Reason.TOO_LARGE,
            retryable=False,
        )
    starts = [0, *range(head, count, segments_per_chunk)] if head < count else [0]
    chunks: list[Chunk] = []
    for index, first in enumerate(starts):
        last = starts[index + 1] if index + 1 < len(starts) else count
        end = float(last * seg) if last < count else end_of_video
        chunks.append(
            Chunk(
                index=index,
                start=float(first * seg),
                end=end,
                first_segment_index=first,
                segment_count=last - first,
            )
        )
    return chunks
