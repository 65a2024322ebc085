"""Every odd or bad input ends either as a valid ladder or as a MediaError with a clear message.

Decisions: an audio-only file is "not a video" (no_video_stream, not retryable); rotation is
applied to the pixels (outputs carry no display matrix); 10-bit and 4:2:2 become 8-bit 4:2:0;
VFR becomes constant frame rate; a file cut short keeps what arrived (as the ffmpeg CLI does),
unless its index is missing too.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest

from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.media.pipeline import TranscodeResult, transcode_local
from streamify.transcode.media.probe import probe
from tests.support import clips, ffprobe

pytestmark = pytest.mark.integration


def transcode(
    make: Callable[[Path], Path], tmp_path: Path, name: str = "in.mp4", segment: float = 1.0
) -> TranscodeResult:
    source = make(tmp_path / name)
    return transcode_local(
        str(source), tmp_path / "out", segment_seconds=segment, chunk_seconds=2 * segment
    )


def assert_valid_ladder(result: TranscodeResult, *, frames: int) -> None:
    """Every segment decodes alone from an IDR as 8-bit 4:2:0 at the rendition's size, the
    frames of all chunks form one constant-rate timeline of the expected length."""
    video = result.info.video
    assert video is not None
    step = 1 / Fraction(result.frame_rate).limit_denominator(1001)
    for rendition in result.renditions:
        r = rendition.rendition
        assert r.width <= video.display_width and r.height <= video.display_height
        assert r.width % 2 == 0 and r.height % 2 == 0
        times: list[Fraction] = []
        for segment in rendition.segments:
            decoded = clips.decode_video_segment(rendition.init_path, segment.path)
            assert decoded and decoded[0].key_frame
            for f in decoded:
                assert (f.width, f.height, f.format.name) == (r.width, r.height, "yuv420p")
            times += [Fraction(f.pts) * f.time_base for f in decoded]
        assert len(times) == frames
        for a, b in zip(times, times[1:], strict=False):
            assert abs((b - a) - step) < Fraction(1, 1000)
    assert result.master.is_file() and result.poster.is_file()


def test_video_without_audio_gets_a_master_without_audio_group(tmp_path):
    result = transcode(clips.video_only_clip, tmp_path)
    assert result.audio is None and not (tmp_path / "out" / "audio").exists()
    text = result.master.read_text()
    assert "#EXT-X-MEDIA" not in text and "AUDIO=" not in text
    variants, _ = clips.parse_master(text)
    assert variants[0]["CODECS"].startswith("avc1.") and "," not in variants[0]["CODECS"]
    assert_valid_ladder(result, frames=90)


def test_audio_only_file_is_not_a_video(tmp_path):
    source = clips.audio_only_clip(tmp_path / "in.m4a")
    with pytest.raises(MediaError) as caught:
        transcode_local(str(source), tmp_path / "out")
    assert caught.value.reason == Reason.NO_VIDEO_STREAM and not caught.value.retryable
    assert (
        str(caught.value)
        == "the file is not a video: no video stream found (it has audio streams only)"
    )


def test_rotated_phone_video_is_encoded_upright_in_portrait(tmp_path):
    result = transcode(clips.rotated_clip, tmp_path)
    assert result.info.video.rotation_degrees == 90
    (only,) = result.renditions  # 180x320 display: smaller than 240p, one rung at its own size
    assert (only.rendition.width, only.rendition.height) == (180, 320)
    assert result.poster_size == (180, 320)
    out = ffprobe.video_stream(only.init_path.parent / "index.m3u8")
    assert out.rotation_degrees == 0 and (out.width, out.height) == (180, 320)
    assert_valid_ladder(result, frames=60)


def test_rotation_turns_the_picture_clockwise(tmp_path):
    """The top-left corner of the coded picture must end up top-right after 90° clockwise."""

    def corner_source(path: Path) -> Path:
        clips.make_clip(path, width=320, height=180, duration=1.0, audio=False, rotation=90)
        return path

    result = transcode(corner_source, tmp_path)
    with av.open(str(tmp_path / "in.mp4")) as c:
        src = next(c.decode(video=0)).reformat(format="gray")
    rendition = result.renditions[0]
    out = clips.decode_video_segment(rendition.init_path, rendition.segments[0].path)[0]
    out = out.reformat(format="gray")
    # testsrc2 pictures are not symmetric: compare a strip of source row 0 with output column -1
    src_row = bytes(src.planes[0])[: src.width][:100:10]
    stride = out.planes[0].line_size
    plane = bytes(out.planes[0])
    out_col = bytes(plane[y * stride + out.width - 1] for y in range(0, 100, 10))
    assert sum(abs(a - b) for a, b in zip(src_row, out_col, strict=True)) < 10 * 12


def test_odd_dimensions_become_even(tmp_path):
    result = transcode(clips.odd_size_clip, tmp_path)
    assert [(r.rendition.width, r.rendition.height) for r in result.renditions] == [
        (640, 358),
        (426, 238),
    ]
    assert_valid_ladder(result, frames=60)


@pytest.mark.parametrize(
    "make,name,pix_fmt",
    [
        (clips.ten_bit_clip, "in.mp4", "yuv420p10le"),
        (clips.four_two_two_clip, "in.mkv", "yuv422p10le"),
    ],
)
def test_10_bit_and_4_2_2_sources_become_8_bit_4_2_0(tmp_path, make, name, pix_fmt):
    result = transcode(make, tmp_path, name)
    assert result.info.video.pixel_format == pix_fmt
    assert_valid_ladder(result, frames=60)


def test_half_second_clip_is_one_short_segment(tmp_path):
    result = transcode(clips.short_clip, tmp_path, segment=4.0)
    (rendition,) = result.renditions
    assert [round(s.duration, 6) for s in rendition.segments] == [0.5]
    assert abs(result.audio.duration - 0.5) < 0.05
    assert_valid_ladder(result, frames=15)


def test_single_keyframe_source_chunks_still_start_on_the_grid(tmp_path):
    result = transcode(clips.long_gop_clip, tmp_path)
    assert len(result.chunks) == 2
    assert_valid_ladder(result, frames=120)


def test_variable_frame_rate_becomes_constant(tmp_path):
    result = transcode(clips.vfr_clip, tmp_path)
    assert result.frame_rate == pytest.approx(30000 / 1001)  # average 29.97 fps
    assert_valid_ladder(result, frames=round(result.chunks[-1].end * 30000 / 1001))


def test_moov_at_the_end_is_read(tmp_path):
    result = transcode(clips.moov_at_end_clip, tmp_path)
    assert_valid_ladder(result, frames=90)


@pytest.mark.parametrize(
    "make,reason,message",
    [
        (clips.empty_file, Reason.EMPTY_FILE, "the file is empty (0 bytes)"),
        (clips.random_bytes_file, Reason.NOT_MEDIA, "the file is not a video, or it is truncated"),
        (
            lambda p: clips.truncated_clip(p, faststart=False),
            Reason.NOT_MEDIA,
            "the file is not a playable video: it starts like an MP4/MOV file but its index",
        ),
    ],
    ids=["empty", "random-bytes", "cut-in-half-moov-at-end"],
)
def test_bad_files_fail_with_a_clear_permanent_error(tmp_path, make, reason, message):
    source = make(tmp_path / "in.mp4")
    with pytest.raises(MediaError) as caught:
        transcode_local(str(source), tmp_path / "out")
    assert caught.value.reason == reason
    assert not caught.value.retryable
    assert str(caught.value).startswith(message)


def test_a_file_cut_short_keeps_what_arrived(tmp_path):
    """Half of a 4 s faststart MP4: its index promises 4 s, the data holds about 2 s. The
    ffmpeg CLI decodes those; so does the pipeline, instead of holding a frozen picture or
    failing at the missing part."""
    result = transcode(clips.truncated_clip, tmp_path)
    end = result.chunks[-1].end
    assert 1.5 < end < 2.5, end
    assert result.info.duration == pytest.approx(end, abs=0.05)
    assert result.audio is not None and abs(result.audio.duration - end) < 0.05
    assert_valid_ladder(result, frames=round(end * 30))


def test_missing_file_is_not_found(tmp_path):
    with pytest.raises(MediaError) as caught:
        probe(str(tmp_path / "nope.mp4"))
    assert caught.value.reason == Reason.SOURCE_NOT_FOUND
