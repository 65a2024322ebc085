"""The plan is bounded: what a source's header claims cannot make the orchestrator plan, or the
workers encode, more than the settings allow. Each limit is exact (at the limit passes, one past
it is refused with a reason a person can act on)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamify.core.config import TranscodeSettings
from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.orchestrator import dag
from streamify.v1 import worker_service_pb2 as wapi

pytestmark = pytest.mark.unit


def probe(seconds: float, fps: float = 30.0) -> wapi.ProbeResult:
    result = wapi.ProbeResult(format="matroska,webm", duration=dag.seconds(seconds))
    result.video.CopyFrom(
        wapi.VideoStreamInfo(
            codec="h264",
            width=640,
            height=360,
            frame_rate=fps,
            pixel_format="yuv420p",
            duration=dag.seconds(seconds),
        )
    )
    return result


def plan(seconds: float, size: int = 10**12, fps: float = 30.0, **limits) -> dag.Plan:
    options = TranscodeSettings(orchestrator_id="t", **limits)
    return dag.make_plan(dag.media_info(probe(seconds, fps), size), options)


def refused(seconds: float, size: int = 10**12, **limits) -> MediaError:
    with pytest.raises(MediaError) as caught:
        plan(seconds, size, **limits)
    assert not caught.value.retryable
    return caught.value


def test_a_video_up_to_the_longest_duration_is_planned_and_one_past_it_is_refused():
    assert plan(3600.0, max_duration_seconds=3600).duration == pytest.approx(3600.0)
    error = refused(3601.0, max_duration_seconds=3600)
    assert error.reason == Reason.TOO_LARGE
    assert error.message == (
        "the video is too long: it lasts 1:00:01; the longest this server transcodes is 1:00:00"
    )


def test_the_default_longest_duration_is_twelve_hours():
    assert TranscodeSettings().max_duration_seconds == 12 * 3600
    assert refused(12 * 3600 + 60).message.endswith(
        "the longest this server transcodes is 12:00:00"
    )


def test_the_frame_limit_counts_output_frames():
    assert plan(10.0, max_frames=300).frame_rate == 30.0  # 10 s x 30 fps = 300 frames
    error = refused(10.1, max_frames=300)
    assert error.reason == Reason.TOO_LARGE
    assert error.message == (
        "the video has too many frames: 303 at 30 fps; the most this server encodes is 300"
    )


def test_the_chunk_limit_is_exact():
    # 4 s segments, the first chunk 1 segment, then 4 per chunk: 36 s = 9 segments = 3 chunks
    assert len(plan(36.0, max_chunks=3).chunks) == 3
    error = refused(36.5, max_chunks=3)
    assert error.reason == Reason.TOO_LARGE
    assert (
        error.message == "the video needs too many chunk tasks: 4; the most this server plans is 3"
    )


@given(
    seconds=st.floats(min_value=0.5, max_value=4000.0),
    fps=st.sampled_from([24.0, 25.0, 29.97, 30.0, 50.0, 60.0]),
    per_chunk=st.integers(min_value=1, max_value=5),
)
def test_the_chunk_bound_counts_exactly_the_chunks_of_the_plan(seconds, fps, per_chunk):
    """The bound is checked before the plan is made, so it counts without making the chunks:
    at the plan's own count it passes, one below it refuses."""
    made = plan(seconds, fps=fps, segments_per_chunk=per_chunk)
    count = len(made.chunks)
    assert (
        len(plan(seconds, fps=fps, segments_per_chunk=per_chunk, max_chunks=count).chunks) == count
    )
    if count > 1:
        with pytest.raises(MediaError, match=f"too many chunk tasks: {count:,};"):
            plan(seconds, fps=fps, segments_per_chunk=per_chunk, max_chunks=count - 1)


def test_a_tiny_file_claiming_days_is_refused_as_a_lying_header():
    error = refused(300_000.0, size=1375)  # a 1.4 KB MKV whose 3 frames are a day apart
    assert error.reason == Reason.CORRUPT
    assert error.message == (
        "the file's header is wrong or the file is truncated: "
        "it is 1.3 KiB but says it lasts 83:20:00"
    )


def test_the_size_check_is_at_one_byte_a_second_by_default_and_can_be_turned_off():
    assert plan(1000.0, size=1000).duration == pytest.approx(1000.0)
    assert refused(1000.0, size=999).reason == Reason.CORRUPT
    assert plan(1000.0, size=1, min_source_bytes_per_second=0).duration == pytest.approx(1000.0)
    assert plan(1000.0, size=0).duration == pytest.approx(1000.0)  # size unknown: no check
