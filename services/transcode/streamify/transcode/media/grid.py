"""Exact arithmetic of the output frame grid and the segment grid (shared by every task).

Output frame ``n`` is shown at ``n / rate`` seconds (source time, relative to the source's
start). Segment ``k`` starts at the first output frame at or after ``k * segment_seconds``,
which is an IDR frame in every rendition. All chunk workers compute the same integers from
the same inputs, so chunks join without gaps or overlaps.
"""

from __future__ import annotations

import math
from fractions import Fraction

_TIME_EPSILON = 1e-6  # seconds * fps tolerance when turning float times into frame indices


def as_rate(frame_rate: float | Fraction) -> Fraction:
    """A frame rate as an exact fraction: 29.97002997 -> 30000/1001, 25.0 -> 25."""
    if frame_rate <= 0:
        raise ValueError(f"frame rate must be positive, got {frame_rate}")
    return Fraction(frame_rate).limit_denominator(1001)


def as_seconds(seconds: float | Fraction) -> Fraction:
    """A duration such as a segment length as an exact fraction (millisecond resolution)."""
    return Fraction(seconds).limit_denominator(1000)


def frame_index_at(t: float, rate: Fraction) -> int:
    """Index of the first output frame at or after time ``t``."""
    return max(0, math.ceil(t * rate - _TIME_EPSILON))


def segment_start_frame(k: int, segment_seconds: float | Fraction, rate: Fraction) -> int:
    """Index of the first output frame of segment ``k`` (its IDR frame)."""
    return math.ceil(k * as_seconds(segment_seconds) * rate)


def total_frames(duration: float, rate: Fraction) -> int:
    """Number of output frames of a video lasting ``duration`` seconds (at least one)."""
    return max(1, round(duration * rate))


def segment_count(frames: int, segment_seconds: float | Fraction, rate: Fraction) -> int:
    """Number of segments holding ``frames`` output frames (no empty last segment)."""
    seg = as_seconds(segment_seconds)
    k = max(1, math.ceil(Fraction(frames) / (seg * rate)))
    while k > 1 and segment_start_frame(k - 1, seg, rate) >= frames:
        k -= 1
    return k


def frames_per_segment(segment_seconds: float | Fraction, rate: Fraction) -> int:
    """The longest distance between two IDR frames, in frames (x264's keyint)."""
    return max(1, math.ceil(as_seconds(segment_seconds) * rate))
