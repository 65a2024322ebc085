"""The rendition ladder for every source size and rotation the service accepts.

(test_media_plan.py has the worked examples; these are the rules they follow.)"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.media.ladder import (
    DEFAULT_RUNGS,
    Rung,
    plan_chunks,
    plan_duration,
    plan_frame_rate,
    plan_ladder,
    plan_poster_time,
    plan_ts_offset,
)
from streamify.transcode.media.models import AudioInfo, MediaInfo, VideoInfo

pytestmark = pytest.mark.unit

# The ladder as docs/architecture.md describes it (written out: the code's table is under test).
BOXES = {
    "1080p": (1920, 1080),
    "720p": (1280, 720),
    "480p": (854, 480),
    "360p": (640, 360),
    "240p": (426, 240),
}
TOLERANCE = 1.02


def info(
    width: int,
    height: int,
    rotation: int = 0,
    *,
    fps: float = 30.0,
    duration: float = 10.0,
    video_duration: float = 10.0,
) -> MediaInfo:
    return MediaInfo(
        format="mov,mp4,m4a,3gp,3g2,mj2",
        duration=duration,
        video=VideoInfo("h264", width, height, rotation, fps, "yuv420p", 300, 1.0, video_duration),
        audio=AudioInfo("aac", 48000, 2),
    )


AUDIO_ONLY = MediaInfo("mp3", 1.2, None, AudioInfo("mp3", 44100, 2))


def test_a_1080p_source_gets_the_documented_ladder_with_its_bitrates():
    ladder = [
        (r.id, r.width, r.height, r.bitrate, r.max_bitrate, r.buffer_size, r.profile, r.preset)
        for r in plan_ladder(info(1920, 1080))
    ]
    assert ladder == [
        ("1080p", 1920, 1080, 5_000_000, 7_500_000, 10_000_000, "high", "veryfast"),
        ("720p", 1280, 720, 2_800_000, 4_200_000, 5_600_000, "high", "veryfast"),
        ("480p", 854, 480, 1_400_000, 2_100_000, 2_800_000, "high", "veryfast"),
        ("360p", 640, 360, 800_000, 1_200_000, 1_600_000, "main", "veryfast"),
        ("240p", 426, 240, 400_000, 600_000, 800_000, "main", "veryfast"),
    ]
    assert [(r.id, r.long_side, r.short_side) for r in DEFAULT_RUNGS] == [
        (i, *b) for i, b in BOXES.items()
    ]


def _edge_cases() -> list[tuple[str, int, int, bool]]:
    """For every rung and side: the source just inside the 2% tolerance and the one just outside,
    the other side well short of the box (so this side decides)."""
    cases = []
    for rid, (long_side, short_side) in BOXES.items():
        inside = math.ceil(long_side / TOLERANCE)
        cases += [
            (rid, inside, short_side * 9 // 10, True),
            (rid, inside - 1, short_side * 9 // 10, False),
        ]
        inside = math.ceil(short_side / TOLERANCE)
        cases += [
            (rid, long_side * 9 // 10, inside, True),
            (rid, long_side * 9 // 10, inside - 1, False),
        ]
    return cases


@pytest.mark.parametrize(("rid", "width", "height", "kept"), _edge_cases())
def test_the_2_percent_tolerance_is_exact_at_every_rung(rid, width, height, kept):
    assert (rid in ids(width, height)) == kept
    assert (rid in ids(height, width)) == kept  # portrait alike


def ids(width: int, height: int) -> list[str]:
    return [r.id for r in plan_ladder(info(width, height))]


@pytest.mark.parametrize(("width", "height"), [(1270, 718), (1256, 706), (718, 1270)])
def test_a_source_up_to_2_percent_short_of_a_rung_keeps_that_rung_at_its_own_size(width, height):
    # a few pixels cropped (1280x720 -> 1270x718) must not cost the viewer the 720p rendition
    top = plan_ladder(info(width, height))[0]
    assert (top.id, top.width, top.height) == ("720p", width, height)


@pytest.mark.parametrize(("width", "height"), [(1240, 698), (1250, 700), (698, 1240)])
def test_a_source_more_than_2_percent_short_of_a_rung_does_not_get_it(width, height):
    assert ids(width, height)[0] == "480p"  # that would be an upscale


@pytest.mark.parametrize(("width", "height"), [(640, 1), (1, 640), (1, 1), (0, 360)])
def test_a_source_one_pixel_thin_in_either_direction_is_refused(width, height):
    with pytest.raises(MediaError, match="too small to encode") as caught:
        plan_ladder(info(width, height))
    assert caught.value.reason == Reason.UNSUPPORTED and not caught.value.retryable


def test_a_source_without_video_is_refused_for_good():
    with pytest.raises(MediaError) as caught:
        plan_ladder(AUDIO_ONLY)
    assert caught.value.reason == Reason.NO_VIDEO_STREAM and not caught.value.retryable


def test_a_tiny_source_gets_a_bitrate_for_its_area_but_at_least_100_kbit():
    (r,) = plan_ladder(info(2, 2))
    assert (r.id, r.width, r.height, r.bitrate) == ("2p", 2, 2, 100_000)
    (r,) = plan_ladder(info(320, 180))  # 56% of 240p's area
    assert (r.id, r.bitrate) == ("180p", 225_000)
    assert (r.max_bitrate, r.buffer_size) == (337_500, 450_000)
    assert r.profile == "main"
    # in whole kbit/s, rounded down
    assert plan_ladder(info(118, 232))[0].bitrate == 107_000  # 107,996 bit/s
    assert plan_ladder(info(120, 230))[0].bitrate == 107_000  # 107,981 bit/s


def test_the_ladder_follows_the_rungs_it_is_given():
    rungs = [
        Rung("hd", 1280, 720, 3_000_000, profile="high", preset="slow"),
        Rung("sd", 640, 360, 900_000, profile="baseline", preset="medium"),
    ]
    assert [
        (r.id, r.width, r.height, r.bitrate, r.profile, r.preset)
        for r in plan_ladder(info(1920, 1080), rungs)
    ] == [
        ("hd", 1280, 720, 3_000_000, "high", "slow"),
        ("sd", 640, 360, 900_000, "baseline", "medium"),
    ]
    (small,) = plan_ladder(info(320, 180), rungs)  # smaller than every rung: the smallest's preset
    assert (small.id, small.width, small.height, small.preset, small.profile) == (
        "180p",
        320,
        180,
        "medium",
        "main",
    )


SIDES = st.integers(min_value=2, max_value=7680)
ROTATIONS = st.sampled_from([0, 90, 180, 270])


@given(width=SIDES, height=SIDES, rotation=ROTATIONS)
@example(width=1280, height=718, rotation=0)
@example(width=1270, height=718, rotation=90)
@example(width=7680, height=4320, rotation=270)
@example(width=427, height=241, rotation=0)
@example(width=7680, height=4, rotation=0)  # a 4-pixel strip: 240p makes it 0.2 px high, kept at 2
def test_every_accepted_source_size_and_rotation_gets_a_ladder_that_never_upscales(
    width, height, rotation
):
    shown = (height, width) if rotation in (90, 270) else (width, height)
    if max(shown) > 7680 or min(shown) > 4320:
        with pytest.raises(MediaError) as caught:
            plan_ladder(info(width, height, rotation))
        assert caught.value.reason == Reason.TOO_LARGE
        return
    ladder = plan_ladder(info(width, height, rotation))
    assert ladder, "every accepted source gets at least one rendition"
    # the rotation only changes the displayed size: the same ladder as an upright source
    assert ladder == plan_ladder(info(*shown))
    areas = [r.width * r.height for r in ladder]
    assert areas == sorted(areas, reverse=True) and len(set(areas)) == len(areas)  # largest first
    assert len({r.id for r in ladder}) == len(ladder)
    landscape = shown[0] >= shown[1]
    for r in ladder:
        assert r.width % 2 == 0 and r.height % 2 == 0 and r.width >= 2 and r.height >= 2
        assert r.width <= shown[0] and r.height <= shown[1]  # never larger than the source
        # the picture's shape is kept (to rounding to even pixels, at least 2)
        assert abs(r.width * shown[1] - r.height * shown[0]) <= 2 * (shown[0] + shown[1])
        assert (r.width >= r.height) == landscape or r.width == r.height
        if r.id in BOXES:
            long_side, short_side = BOXES[r.id]
            box = (long_side, short_side) if landscape else (short_side, long_side)
            assert r.width <= box[0] and r.height <= box[1]  # fits its rung
            # a rung is used only when the source is at most 2% short of its box
            assert min(box[0] / shown[0], box[1] / shown[1]) <= TOLERANCE
    for rid, (long_side, short_side) in BOXES.items():  # every rung the source is large enough for
        box = (long_side, short_side) if landscape else (short_side, long_side)
        if shown[0] >= box[0] and shown[1] >= box[1]:
            assert any(r.width == box[0] or r.height == box[1] for r in ladder), rid


# --- frame rate, duration, timestamps, poster ------------------------------------------------

STANDARD = [24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 48.0, 50.0, 60000 / 1001, 60.0]


@pytest.mark.parametrize("rate", STANDARD)
def test_every_standard_frame_rate_is_kept_exactly_and_a_reading_near_it_snaps_to_it(rate):
    exact = float(Fraction(rate).limit_denominator(1001))
    assert plan_frame_rate(info(1280, 720, fps=rate)) == exact
    for nearby in (rate * 0.9998, rate * 1.0002):  # what a VFR phone clip reports
        assert plan_frame_rate(info(1280, 720, fps=nearby)) == exact


def test_a_rate_is_snapped_within_3_percent_only():
    assert plan_frame_rate(info(1280, 720, fps=25 * 1.029)) == 25.0
    assert plan_frame_rate(info(1280, 720, fps=25 * 1.031)) == pytest.approx(25 * 1.031, abs=1e-3)


@pytest.mark.parametrize(
    ("fps", "expected"),
    [
        (1.0, 1.0),
        (0.5, 30.0),
        (math.nan, 30.0),
        (math.inf, 30.0),
        (-5.0, 30.0),  # 1 fps slideshows
        (60 * 1.001, 60.0),
        (61.0, 30.0),
        (119.88, 60000 / 1001),
        (15.0, 15.0),
        (12.5, 12.5),
    ],
)
def test_unknown_rates_default_to_30_and_fast_ones_are_halved_until_at_most_60(fps, expected):
    assert plan_frame_rate(info(1280, 720, fps=fps)) == pytest.approx(expected)


def test_a_source_without_video_is_planned_at_30_fps():
    assert plan_frame_rate(AUDIO_ONLY) == 30.0


@pytest.mark.parametrize(
    ("container", "video", "expected"),
    [
        (6.4, 6.0, 6.0),  # AAC padding: the picture's own length
        (6.5, 6.0, 6.5),
        (6.6, 6.0, 6.6),  # a soundtrack half a second longer or more: kept
        (0.9, 0.2, 0.9),
        (0.9, 0.8, 0.8),
        (0.0, 6.0, 6.0),  # the container does not say
        (0.3, 0.0, 0.3),  # the stream does not say
    ],
)
def test_the_duration_is_the_pictures_unless_the_sound_outlasts_it(container, video, expected):
    assert plan_duration(info(640, 360, duration=container, video_duration=video)) == expected


def test_an_audio_only_source_lasts_as_long_as_its_container_says():
    assert plan_duration(AUDIO_ONLY) == 1.2


def test_the_ts_offset_is_at_least_a_second_and_4_frames_at_low_rates():
    assert plan_ts_offset(30.0) == 1.0 and plan_ts_offset(4.0) == 1.0
    assert plan_ts_offset(3.0) == 1.333


@pytest.mark.parametrize(
    ("duration", "at"),
    [
        (0.5, 0.0),
        (1.99, 0.0),
        (2.0, 0.2),
        (2.5, 0.25),
        (20.0, 2.0),
        (300.0, 30.0),
        (3600.0, 30.0),
    ],
)
def test_the_poster_is_taken_a_tenth_in_at_most_30_s_and_at_the_start_of_a_short_clip(duration, at):
    assert plan_poster_time(duration) == pytest.approx(at)


# --- the chunk grid ------------------------------------------------------------------------------


def spans(chunks) -> list[tuple[float, float, int, int]]:
    return [(c.start, c.end, c.first_segment_index, c.segment_count) for c in chunks]


def test_by_default_chunks_are_four_segments_of_four_seconds():
    assert spans(plan_chunks(40.0)) == [(0.0, 16.0, 0, 4), (16.0, 32.0, 4, 4), (32.0, 40.0, 8, 2)]


def test_a_duration_of_whole_segments_has_no_empty_last_segment():
    assert spans(plan_chunks(32.0, 4.0, 2))[-1] == (24.0, 32.0, 6, 2)
    assert spans(plan_chunks(3.0, 4.0, 1)) == [(0.0, 3.0, 0, 1)]


def test_the_first_chunk_can_be_shorter_on_the_time_grid_too():
    assert [c.segment_count for c in plan_chunks(30.0, 4.0, 2, first_chunk_segments=1)] == [
        1,
        2,
        2,
        2,
        1,
    ]


@pytest.mark.parametrize("duration", [0.0, -1.0])
def test_a_source_without_duration_has_no_chunks(duration):
    with pytest.raises(MediaError, match="no duration") as caught:
        plan_chunks(duration)
    assert caught.value.reason == Reason.CORRUPT and not caught.value.retryable


@pytest.mark.parametrize(("segment", "per_chunk"), [(0.0, 4), (-1.0, 4), (4.0, 0), (4.0, -1)])
def test_a_grid_needs_positive_segments_and_at_least_one_per_chunk(segment, per_chunk):
    with pytest.raises(ValueError, match="segment_seconds must be > 0 and segments_per_chunk >= 1"):
        plan_chunks(10.0, segment, per_chunk)


def test_every_positive_duration_is_at_least_one_segment():
    assert spans(plan_chunks(1e-12, 4.0, 1)) == [(0.0, 1e-12, 0, 1)]


def test_one_second_segments_of_one_per_chunk_are_allowed():
    assert len(plan_chunks(3.0, 1.0, 1)) == 3
