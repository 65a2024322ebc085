"""A real transcode of a small clip in several chunks, validated by decoding the output with
PyAV: every segment decodes on its own and starts with an IDR, segments sit on the grid,
chunks join without a missing or repeated frame, audio has no gaps, the master tells the truth.
"""

from __future__ import annotations

import io
import math
from fractions import Fraction
from pathlib import Path

import av
import pytest

from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.media.hls_output import avc_codecs
from streamify.transcode.media.ladder import plan_chunks
from streamify.transcode.media.models import Rendition
from streamify.transcode.media.pipeline import TranscodeResult, transcode_local
from streamify.transcode.media.video_chunk import encode_video_chunk
from tests.support import clips, ffprobe

pytestmark = pytest.mark.integration

SEGMENT = 1.0
FPS = 30


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return clips.standard_clip(tmp_path_factory.mktemp("src") / "a.mp4", duration=6.0)


@pytest.fixture(scope="module")
def result(source, tmp_path_factory) -> TranscodeResult:
    # 6 s, 1 s segments, 2 segments per chunk: three chunks encoded independently.
    return transcode_local(
        str(source), tmp_path_factory.mktemp("hls"), segment_seconds=SEGMENT, chunk_seconds=2.0
    )


def video_frames(result: TranscodeResult, rendition) -> list[tuple[int, list[av.VideoFrame]]]:
    return [
        (s.index, clips.decode_video_segment(rendition.init_path, s.path))
        for s in rendition.segments
    ]


def test_source_is_split_in_three_chunks(result):
    assert [(c.start, c.end, c.first_segment_index) for c in result.chunks] == [
        (0.0, 2.0, 0),
        (2.0, 4.0, 2),
        (4.0, 6.0, 4),
    ]


def test_ladder_stops_at_the_source_size(result):
    assert [(r.rendition.id, r.rendition.width, r.rendition.height) for r in result.renditions] == [
        ("360p", 640, 360),
        ("240p", 426, 240),
    ]


def test_every_segment_decodes_alone_and_starts_with_an_idr(result):
    for rendition in result.renditions:
        for index, frames in video_frames(result, rendition):
            assert frames, f"{rendition.rendition.id} segment {index} has no frame"
            first = frames[0]
            assert first.key_frame and first.pict_type == av.video.frame.PictureType.I
            assert all(not f.key_frame for f in frames[1:]), "one IDR per segment, at its start"
            assert (first.width, first.height) == (
                rendition.rendition.width,
                rendition.rendition.height,
            )
            assert first.format.name == "yuv420p"


def test_segments_are_on_the_grid_and_chunks_join_frame_by_frame(result):
    for rendition in result.renditions:
        times: list[Fraction] = []
        for index, frames in video_frames(result, rendition):
            start = Fraction(frames[0].pts) * frames[0].time_base - Fraction(result.ts_offset)
            assert start == index * Fraction(SEGMENT), f"segment {index} starts at {start}"
            assert len(frames) == FPS * SEGMENT
            times += [Fraction(f.pts) * f.time_base for f in frames]
        steps = {b - a for a, b in zip(times, times[1:], strict=False)}
        assert steps == {Fraction(1, FPS)}, "no frame missing or repeated at chunk joins"
        assert len(times) == 6 * FPS  # total duration exactly the source's 6 s
        assert [s.duration for s in rendition.segments] == [SEGMENT] * 6


def test_init_segment_is_shared_and_task_files_are_cleaned_up(result):
    for rendition in result.renditions:
        directory = rendition.init_path.parent
        assert sorted(p.name for p in directory.iterdir()) == [
            "index.m3u8",
            "init.mp4",
            *[f"seg_{i:05d}.m4s" for i in range(6)],
        ]


def test_init_segments_of_separate_chunk_runs_are_byte_identical(source, tmp_path):
    chunks = plan_chunks(6.0, SEGMENT, 2, frame_rate=FPS)
    rung = Rendition("240p", 426, 240, 400_000, 600_000, 800_000, "main", "veryfast")
    inits = []
    for chunk in (chunks[0], chunks[2]):
        (out,) = encode_video_chunk(
            str(source),
            chunk,
            [rung],
            tmp_path,
            segment_seconds=SEGMENT,
            frame_rate=FPS,
            ts_offset=1.0,
        )
        inits.append(out.init_path.read_bytes())
    assert inits[0] == inits[1]


def test_codecs_come_from_the_encoded_sps(result):
    for rendition in result.renditions:
        codecs = avc_codecs(rendition.init_path.read_bytes())
        assert rendition.codecs == codecs
        profile_idc, level_idc = int(codecs[5:7], 16), int(codecs[9:11], 16)
        assert profile_idc == {"high": 100, "main": 77}[rendition.rendition.profile]
        # what FFmpeg's own parser reads from the SPS of the init segment + first segment
        data = rendition.init_path.read_bytes() + rendition.segments[0].path.read_bytes()
        with av.open(io.BytesIO(data)) as c:
            ctx = c.streams.video[0].codec_context
            assert ctx.profile.lower() == rendition.rendition.profile
            assert ctx.level == level_idc


def test_master_playlist_attributes_match_the_encoded_outputs(result):
    variants, media = clips.parse_master(result.master.read_text())
    assert [m["URI"] for m in media] == ["audio/index.m3u8"]
    by_uri = {v["URI"]: v for v in variants}
    for rendition in result.renditions:
        v = by_uri[f"{rendition.rendition.id}/index.m3u8"]
        frames = clips.decode_video_segment(rendition.init_path, rendition.segments[0].path)
        assert v["RESOLUTION"] == f"{frames[0].width}x{frames[0].height}"
        assert v["CODECS"] == f"{rendition.codecs},mp4a.40.2"
        assert v["AUDIO"] == "audio"
        assert float(v["FRAME-RATE"]) == FPS
        peak = max(s.size_bytes * 8 / s.duration for s in rendition.segments)
        audio_peak = max(s.size_bytes * 8 / s.duration for s in result.audio.segments[:-1])
        assert int(v["BANDWIDTH"]) == pytest.approx(peak + audio_peak, abs=2)
        assert int(v["AVERAGE-BANDWIDTH"]) < int(v["BANDWIDTH"])
        assert (result.master.parent / v["URI"]).is_file()


def test_media_playlists_list_the_segments_and_end(result):
    text = (result.master.parent / "360p" / "index.m3u8").read_text()
    assert text.count("#EXTINF:1.000000,") == 6
    assert "#EXT-X-TARGETDURATION:1" in text and text.rstrip().endswith("#EXT-X-ENDLIST")


def test_audio_is_continuous_and_as_long_as_the_source(result):
    audio = result.audio
    assert audio.codecs == "mp4a.40.2"
    frames = clips.decode_audio_track(audio.init_path, [s.path for s in audio.segments])
    assert {f.sample_rate for f in frames} == {48_000}
    assert {f.layout.name for f in frames} == {"stereo"}
    for a, b in zip(frames, frames[1:], strict=False):
        assert b.pts == a.pts + a.samples, "gap or overlap in the audio"
    start = float(frames[0].pts * frames[0].time_base) - result.ts_offset
    total = sum(f.samples for f in frames) / 48_000
    assert abs(start) < 0.050 and abs(total - 6.0) < 0.050
    # segments are cut within one AAC frame of the video's grid
    edges = [sum(s.duration for s in audio.segments[: i + 1]) for i in range(len(audio.segments))]
    for k, edge in enumerate(edges[:-1], 1):
        assert abs(edge - 1024 / 48_000 - k * SEGMENT) <= 1024 / 48_000 + 1e-6


def test_poster_is_a_jpeg_of_the_video_size(result):
    data = result.poster.read_bytes()
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    assert result.poster_size == (640, 360)
    with av.open(str(result.poster)) as c:
        frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == (640, 360)


def test_outputs_probe_as_h264_without_rotation(result):
    rendition = result.renditions[0]
    info = ffprobe.video_stream(rendition.init_path.parent / "index.m3u8")
    assert info.codec == "h264"
    assert info.rotation_degrees == 0
    assert math.isclose(info.duration, 6.0, abs_tol=1 / FPS)


def test_progress_is_reported_up_to_one(source, tmp_path):
    chunk = plan_chunks(6.0, SEGMENT, 2, frame_rate=FPS)[1]
    rung = Rendition("240p", 426, 240, 400_000, 600_000, 800_000, "main", "veryfast")
    seen: list[float] = []
    encode_video_chunk(
        str(source),
        chunk,
        [rung],
        tmp_path,
        segment_seconds=SEGMENT,
        frame_rate=FPS,
        ts_offset=1.0,
        on_progress=seen.append,
    )
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 5


def test_chunks_in_parallel_processes_give_the_same_segments(source, result, tmp_path):
    parallel = transcode_local(
        str(source), tmp_path, segment_seconds=SEGMENT, chunk_seconds=2.0, workers=2
    )
    for a, b in zip(result.renditions, parallel.renditions, strict=True):
        assert [s.duration for s in a.segments] == [s.duration for s in b.segments]
        assert a.init_path.read_bytes() == b.init_path.read_bytes()
        assert a.codecs == b.codecs


def test_a_failing_encoder_fails_the_chunk_instead_of_hanging(source, tmp_path):
    chunk = plan_chunks(6.0, SEGMENT, 2, frame_rate=FPS)[0]
    good = Rendition("240p", 426, 240, 400_000, 600_000, 800_000, "main", "veryfast")
    bad = Rendition("360p", 640, 360, 800_000, 1_200_000, 1_600_000, "main", "no-such-preset")
    with pytest.raises(MediaError) as caught:
        encode_video_chunk(
            str(source),
            chunk,
            [good, bad],
            tmp_path,
            segment_seconds=SEGMENT,
            frame_rate=FPS,
            ts_offset=1.0,
        )
    assert caught.value.reason == Reason.ENCODER_FAILED
    assert "360p" in str(caught.value)
    assert not list(tmp_path.glob("*/.c00000*")), "no task-private files left behind"
