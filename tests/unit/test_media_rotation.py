"""Frames of a rotated phone video turned upright (in memory: a tiny frame with a marked corner)."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamify.transcode.media.rotation import Rotator, normalize_rotation, rotated_size

pytestmark = pytest.mark.unit

BLACK, WHITE = 16, 235  # luma


def frame(width: int, height: int, marked: tuple[int, int] = (0, 0)) -> av.VideoFrame:
    """A black yuv420p frame with one white pixel (x, y)."""
    f = av.VideoFrame(width, height, "yuv420p")
    luma = f.planes[0]
    data = bytearray([BLACK]) * (luma.line_size * height)
    data[marked[1] * luma.line_size + marked[0]] = WHITE
    luma.update(bytes(data))
    for chroma in f.planes[1:]:
        chroma.update(bytes([128]) * chroma.buffer_size)
    f.pts, f.time_base = 0, Fraction(1, 30)
    return f


def white_pixels(f: av.VideoFrame) -> list[tuple[int, int]]:
    luma = f.planes[0]
    data = bytes(luma)
    return [
        (x, y)
        for y in range(f.height)
        for x in range(f.width)
        if data[y * luma.line_size + x] > 128
    ]


@pytest.mark.parametrize(
    ("degrees", "size", "corner"),
    [
        (90, (4, 8), (3, 0)),  # clockwise: the top-left corner goes to the top right
        (180, (8, 4), (7, 3)),
        (270, (4, 8), (0, 7)),
        (-90, (4, 8), (0, 7)),
    ],
)
def test_frames_are_turned_clockwise_by_the_display_rotation(degrees, size, corner):
    out = Rotator(degrees)(frame(8, 4))
    assert (out.width, out.height) == size == rotated_size(8, 4, degrees)
    assert out.format.name == "yuv420p"
    assert white_pixels(out) == [corner]


def test_an_upright_video_is_not_filtered_at_all():
    f = frame(8, 4)
    assert Rotator(0)(f) is f and Rotator(360)(f) is f


def test_a_frame_size_change_mid_stream_rebuilds_the_filter():
    rotate = Rotator(90)
    assert (rotate(frame(8, 4)).width, rotate(frame(8, 4)).height) == (4, 8)
    graph = (
        rotate._graph
    )  # a video's frames share one filter graph (building one per frame is slow)
    rotate(frame(8, 4))
    assert rotate._graph is graph
    second = rotate(frame(6, 2, marked=(5, 1)))  # the bottom-right corner goes to the bottom left
    assert (second.width, second.height) == (2, 6)
    assert white_pixels(second) == [(0, 5)]
    assert rotate._graph is not graph


@given(turns=st.integers(min_value=-8, max_value=8))
def test_any_multiple_of_90_degrees_is_one_of_the_four_rotations(turns):
    degrees = normalize_rotation(90 * turns)
    assert degrees in (0, 90, 180, 270) and (degrees - 90 * turns) % 360 == 0
    assert rotated_size(1920, 1080, 90 * turns) == ((1080, 1920) if turns % 2 else (1920, 1080))


@pytest.mark.parametrize("degrees", [45, 1, -1, 89, 91, 359])
def test_a_rotation_that_is_not_a_quarter_turn_is_refused(degrees):
    with pytest.raises(ValueError, match="multiple of 90"):
        normalize_rotation(degrees)
    with pytest.raises(ValueError):
        Rotator(degrees)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_frames_keep_their_timestamps(degrees):
    """The segment grid places IDR frames by pts: a rotated frame must keep its time."""
    rotate = Rotator(degrees)
    for pts in (0, 1, 2, 90):
        f = frame(8, 4)
        f.pts, f.time_base = pts, Fraction(1, 90_000)
        out = rotate(f)
        assert out.time_base == Fraction(1, 90_000)
        assert out.pts == pts
