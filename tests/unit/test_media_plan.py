"""Planning without I/O: the ladder never upscales, follows rotation, keeps sizes even; the
chunk grid is one fixed grid; frame rate and duration choices."""

from __future__ import annotations

import pytest

from streamify.transcode.media import grid
from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.media.ladder import (
    DEFAULT_RUNGS,
    plan_chunks,
    plan_duration,
    plan_frame_rate,
    plan_ladder,
    plan_ts_offset,
)
from streamify.transcode.media.models import AudioInfo, MediaInfo, VideoInfo

pytestmark = pytest.mark.unit


def info(
    width: int,
    height: int,
    *,
    rotation: int = 0,
    fps: float = 30.0,
    sar: float = 1.0,
    duration: float = 10.0,
    video_duration: float = 10.0,
) -> MediaInfo:
    return MediaInfo(
        format="mov,mp4,m4a,3gp,3g2,mj2",
        duration=duration,
        video=VideoInfo("h264", width, height, rotation, fps, "yuv420p", 300, sar, video_duration),
        audio=AudioInfo("aac", 48000, 2),
    )


def sizes(renditions) -> list[tuple[str, int, int]]:
    return [(r.id, r.width, r.height) for r in renditions]


def test_1080p_source_gets_the_whole_default_ladder_largest_first():
    assert sizes(plan_ladder(info(1920, 1080))) == [
        ("1080p", 1920, 1080),
        ("720p", 1280, 720),
        ("480p", 854, 480),
        ("360p", 640, 360),
        ("240p", 426, 240),
    ]


def test_ladder_never_upscales_a_480p_source():
    ladder = plan_ladder(info(854, 480))
    assert [r.id for r in ladder] == ["480p", "360p", "240p"]
    assert all(r.width <= 854 and r.height <= 480 for r in ladder)


def test_source_a_few_pixels_short_of_a_rung_keeps_it_at_its_own_size():
    top = plan_ladder(info(1280, 718))[0]
    assert (top.id, top.width, top.height) == ("720p", 1280, 718)


def test_rotated_phone_video_gets_portrait_rungs_chosen_by_the_short_side():
    ladder = plan_ladder(info(1920, 1080, rotation=90))
    assert sizes(ladder)[:2] == [("1080p", 1080, 1920), ("720p", 720, 1280)]
    assert all(r.height > r.width for r in ladder)


def test_portrait_coded_video_without_rotation_is_also_portrait():
    assert sizes(plan_ladder(info(720, 1280)))[0] == ("720p", 720, 1280)


def test_odd_source_dimensions_give_even_rendition_dimensions():
    ladder = plan_ladder(info(641, 359))
    assert all(r.width % 2 == 0 and r.height % 2 == 0 for r in ladder)
    assert sizes(ladder) == [("360p", 640, 358), ("240p", 426, 238)]


def test_aspect_ratio_is_kept_for_4_3_and_ultrawide_sources():
    assert sizes(plan_ladder(info(1440, 1080)))[0] == ("1080p", 1440, 1080)
    assert sizes(plan_ladder(info(2560, 1080)))[0] == ("1080p", 1920, 810)


def test_anamorphic_source_uses_square_pixel_display_size():
    assert sizes(plan_ladder(info(1440, 1080, sar=4 / 3)))[0] == ("1080p", 1920, 1080)


def test_source_smaller_than_240p_gets_one_rung_at_its_own_size():
    ladder = plan_ladder(info(177, 99))
    assert len(ladder) == 1
    r = ladder[0]
    assert (r.width, r.height) == (176, 98)
    assert 100_000 <= r.bitrate < DEFAULT_RUNGS[-1].bitrate


def test_vbv_settings_follow_the_bitrate():
    r = plan_ladder(info(1280, 720))[0]
    assert r.max_bitrate > r.bitrate and r.buffer_size >= r.max_bitrate
    assert r.profile == "high" and r.preset == "veryfast"


@pytest.mark.parametrize("width,height", [(8192, 4320), (4320, 8192), (7682, 100), (4322, 4322)])
def test_source_beyond_the_maximum_is_rejected_for_good(width, height):
    with pytest.raises(MediaError) as caught:
        plan_ladder(info(width, height))
    assert caught.value.reason == Reason.TOO_LARGE
    assert not caught.value.retryable
    assert f"the video is {width}x{height}, larger than the maximum 7680x4320" in str(caught.value)


@pytest.mark.parametrize("width,height", [(7680, 4320), (4320, 7680)])
def test_8k_source_is_accepted_and_downscaled_into_the_whole_ladder(width, height):
    ladder = sizes(plan_ladder(info(width, height)))
    landscape = [
        ("1080p", 1920, 1080),
        ("720p", 1280, 720),
        ("480p", 854, 480),
        ("360p", 640, 360),
        ("240p", 426, 240),
    ]
    assert ladder == (landscape if width > height else [(i, h, w) for i, w, h in landscape])


def test_maximum_is_orientation_independent():
    plan_ladder(info(2160, 3840), max_width=3840, max_height=2160)  # portrait 4K passes
    with pytest.raises(MediaError):
        plan_ladder(info(1920, 1080), max_width=1280, max_height=720)


def test_ladder_of_a_source_without_video_says_so():
    with pytest.raises(MediaError) as caught:
        plan_ladder(MediaInfo("mp3", 3.0, None, AudioInfo("mp3", 44100, 2)))
    assert caught.value.reason == Reason.NO_VIDEO_STREAM


def test_chunks_lie_on_one_fixed_grid_with_a_shorter_last_chunk():
    chunks = plan_chunks(30.0, 4.0, 2)
    assert [(c.start, c.end, c.first_segment_index, c.segment_count) for c in chunks] == [
        (0.0, 8.0, 0, 2),
        (8.0, 16.0, 2, 2),
        (16.0, 24.0, 4, 2),
        (24.0, 30.0, 6, 2),
    ]
    assert plan_chunks(33.0, 4.0, 2)[-1].segment_count == 1


def test_chunks_on_the_frame_grid_never_end_with_an_empty_segment():
    # 8.01 s at 30 fps is 240 frames = exactly 8 s: two segments, not a third one without frames.
    chunks = plan_chunks(8.01, 4.0, 1, frame_rate=30.0)
    assert [(c.start, c.end) for c in chunks] == [(0.0, 4.0), (4.0, 8.0)]


def test_chunk_grid_at_ntsc_rate_puts_segment_starts_on_frames():
    rate = grid.as_rate(30000 / 1001)
    assert rate.numerator == 30000 and rate.denominator == 1001
    starts = [grid.segment_start_frame(k, 4.0, rate) for k in range(4)]
    assert starts == [0, 120, 240, 360]  # 119.88 frames per segment: ceil puts IDRs at or after
    assert grid.frames_per_segment(4.0, rate) == 120
    chunks = plan_chunks(10.0, 4.0, 1, frame_rate=30000 / 1001)
    assert chunks[-1].end == pytest.approx(300 / rate)


def test_tiny_clip_is_one_chunk_of_one_segment():
    (chunk,) = plan_chunks(0.5, 4.0, 4, frame_rate=30.0)
    assert (chunk.start, chunk.end, chunk.segment_count) == (0.0, 0.5, 1)


@pytest.mark.parametrize(
    "fps,expected",
    [
        (30.0, 30.0),
        (29.6, 30000 / 1001),
        (30.4, 30.0),
        (29.97002997, 30000 / 1001),
        (25.0, 25.0),
        (120.0, 60.0),
        (100.0, 50.0),
        (15.0, 15.0),
        (0.0, 30.0),
        (240.0, 60.0),
    ],
)
def test_output_frame_rate_is_standard_and_at_most_60(fps, expected):
    assert plan_frame_rate(info(1280, 720, fps=fps)) == pytest.approx(expected)


def test_duration_ignores_audio_padding_but_not_a_longer_soundtrack():
    assert plan_duration(info(640, 360, duration=6.023, video_duration=6.0)) == 6.0
    assert plan_duration(info(640, 360, duration=9.0, video_duration=6.0)) == 9.0


def test_ts_offset_covers_the_b_frame_delay_at_low_frame_rates():
    assert plan_ts_offset(30.0) == 1.0
    assert plan_ts_offset(2.0) == 2.0
