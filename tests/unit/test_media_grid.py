"""The frame and segment grid every chunk worker computes alike: chunks join without a gap or an
overlap, each segment starts on a frame (its IDR) and none is empty, at any frame rate."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from streamify.transcode.media import grid
from streamify.transcode.media.ladder import STANDARD_FRAME_RATES, plan_chunks

pytestmark = pytest.mark.unit

NTSC = Fraction(30000, 1001)
RATES = st.sampled_from(
    [*STANDARD_FRAME_RATES, Fraction(15), Fraction(1), Fraction(12), Fraction(1000, 41)]
)
SEGMENTS = st.sampled_from(
    [Fraction(1), Fraction(2), Fraction(4), Fraction(6), Fraction(3, 2), Fraction(1001, 500)]
)


@pytest.mark.parametrize(
    ("given_rate", "exact"),
    [
        (30000 / 1001, NTSC),
        (29.97002997, NTSC),
        (24000 / 1001, Fraction(24000, 1001)),
        (60000 / 1001, Fraction(60000, 1001)),
        (25.0, Fraction(25)),
        (1.0, Fraction(1)),
        (12.5, Fraction(25, 2)),
    ],
)
def test_frame_rates_become_exact_fractions(given_rate, exact):
    assert grid.as_rate(given_rate) == exact


@pytest.mark.parametrize("rate", [0, 0.0, -25.0])
def test_a_frame_rate_must_be_positive(rate):
    with pytest.raises(ValueError, match="frame rate must be positive"):
        grid.as_rate(rate)


@pytest.mark.parametrize(
    ("seconds", "exact"),
    [
        (4.0, Fraction(4)),
        (1.5, Fraction(3, 2)),
        (2.002, Fraction(1001, 500)),
        (0.001, Fraction(1, 1000)),
    ],
)
def test_segment_lengths_become_exact_fractions(seconds, exact):
    assert grid.as_seconds(seconds) == exact


def test_a_time_names_the_first_frame_at_or_after_it_despite_float_noise():
    rate = Fraction(30)
    assert grid.frame_index_at(1.0, rate) == 30
    assert grid.frame_index_at(1.0 + 1e-9, rate) == 30  # 30.00000003 frames is frame 30
    assert grid.frame_index_at(1.0 - 1e-9, rate) == 30
    assert grid.frame_index_at(1.01, rate) == 31
    assert grid.frame_index_at(0.0, rate) == 0
    assert grid.frame_index_at(-0.5, rate) == 0  # before the start: the first frame
    assert grid.frame_index_at(4.0, NTSC) == 120  # 119.88: the frame after


def test_every_clip_has_at_least_one_frame():
    assert grid.total_frames(0.01, Fraction(30)) == 1
    assert grid.total_frames(10.0, NTSC) == 300
    assert grid.total_frames(10.03, Fraction(25)) == 251  # rounded, not cut


def test_the_keyframe_interval_is_a_segment_of_frames_rounded_up():
    assert grid.frames_per_segment(4.0, Fraction(30)) == 120
    assert grid.frames_per_segment(4.0, NTSC) == 120
    assert grid.frames_per_segment(Fraction(1, 25), Fraction(25)) == 1
    assert grid.frames_per_segment(Fraction(1, 50), Fraction(25)) == 1  # never 0


def segments_holding(frames: int, seg: Fraction, rate: Fraction) -> int:
    """The definition: segments whose first frame is one of the video's (at least one)."""
    return max(
        1, sum(1 for k in range(frames + 1) if grid.segment_start_frame(k, seg, rate) < frames)
    )


@given(frames=st.integers(min_value=1, max_value=2_000), seg=SEGMENTS, rate=RATES)
@example(frames=240, seg=Fraction(4), rate=NTSC)  # 2.002 segments: the third would be empty
@example(frames=120, seg=Fraction(4), rate=NTSC)
@example(frames=1, seg=Fraction(4), rate=Fraction(30))
def test_no_segment_is_left_without_a_frame(frames, seg, rate):
    assert grid.segment_count(frames, seg, rate) == segments_holding(frames, seg, rate)


@given(
    duration=st.floats(min_value=0.01, max_value=900.0),
    seg=SEGMENTS,
    rate=RATES,
    per_chunk=st.integers(min_value=1, max_value=5),
    first=st.integers(min_value=0, max_value=3),
)
@example(duration=8.01, seg=Fraction(4), rate=Fraction(30), per_chunk=1, first=0)
@example(duration=10.0, seg=Fraction(4), rate=NTSC, per_chunk=1, first=0)
def test_chunks_join_frame_exactly_and_start_on_their_first_segments_idr(
    duration, seg, rate, per_chunk, first
):
    chunks = plan_chunks(
        duration, float(seg), per_chunk, frame_rate=float(rate), first_chunk_segments=first
    )
    rate = grid.as_rate(float(rate))
    frames = grid.total_frames(duration, rate)
    assert grid.frame_index_at(chunks[0].start, rate) == 0
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert grid.frame_index_at(a.end, rate) == grid.frame_index_at(
            b.start, rate
        )  # no gap, no overlap
    for c in chunks:
        assert grid.frame_index_at(c.start, rate) == grid.segment_start_frame(
            c.first_segment_index, seg, rate
        )
        assert grid.frame_index_at(c.end, rate) > grid.frame_index_at(c.start, rate)  # never empty
    assert (
        grid.frame_index_at(chunks[-1].end, rate) == frames
    )  # the last frame is in the last chunk
    assert sum(c.segment_count for c in chunks) == grid.segment_count(frames, seg, rate)
