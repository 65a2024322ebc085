"""The plan a probe makes, as the workers receive it: a rotated phone video is encoded and its
poster taken upright, and chunks of several segments each name the right segments.

(test_orchestrator_dag.py covers the plan of a plain landscape clip with one segment per chunk.)
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamify.core.config import TranscodeSettings
from streamify.transcode.orchestrator import dag
from streamify.v1 import worker_service_pb2 as wapi

pytestmark = pytest.mark.unit

SOURCE = wapi.SourceRef(bucket="uploads", key="sources/v1/u1", size_bytes=1234)
OUTPUT = wapi.OutputRef(bucket="media", prefix="videos/v1/")


def probe(
    seconds: float, *, width: int = 1920, height: int = 1080, rotation: int = 0, audio: bool = True
) -> wapi.ProbeResult:
    result = wapi.ProbeResult(format="mov,mp4,m4a,3gp,3g2,mj2", duration=dag.seconds(seconds))
    result.video.CopyFrom(
        wapi.VideoStreamInfo(
            codec="h264",
            width=width,
            height=height,
            rotation_degrees=rotation,
            frame_rate=30.0,
            pixel_format="yuv420p",
            duration=dag.seconds(seconds),
        )
    )
    if audio:
        result.audio.CopyFrom(wapi.AudioStreamInfo(codec="aac", sample_rate=48000, channels=2))
    return result


def tasks_of(
    p: wapi.ProbeResult, options: TranscodeSettings
) -> tuple[dag.Plan, list[dag.PlannedTask]]:
    plan = dag.make_plan(dag.media_info(p, 1234), options)
    return plan, dag.planned_tasks(plan, SOURCE, OUTPUT, options)


OPTIONS = TranscodeSettings(
    orchestrator_id="t", segment_seconds=4.0, segments_per_chunk=3, first_chunk_segments=1
)


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_every_task_of_a_rotated_video_turns_it_upright(rotation):
    # A phone records 1920x1080 pixels and a display matrix; the workers apply the rotation.
    plan, tasks = tasks_of(probe(20.0, rotation=rotation), OPTIONS)
    assert plan.rotation_degrees == rotation
    assert dag.Plan.from_json(plan.to_json()).rotation_degrees == rotation
    chunks = [t.spec.video_chunk for t in tasks if t.kind == dag.VIDEO_CHUNK]
    assert chunks and all(c.rotation_degrees == rotation for c in chunks)
    (poster,) = [t.spec.poster for t in tasks if t.kind == dag.POSTER]
    assert poster.rotation_degrees == rotation
    top = chunks[0].renditions[0]
    portrait = rotation in (90, 270)
    assert (top.width, top.height) == ((1080, 1920) if portrait else (1920, 1080))


def test_chunks_of_several_segments_name_their_first_segment():
    plan, tasks = tasks_of(probe(40.0), OPTIONS)  # 10 segments: 1, then 3, 3, 3
    chunks = [t.spec.video_chunk for t in tasks if t.kind == dag.VIDEO_CHUNK]
    assert [(c.chunk_index, c.first_segment_index) for c in chunks] == [
        (0, 0),
        (1, 1),
        (2, 4),
        (3, 7),
    ]
    assert [dag.to_seconds(c.start) for c in chunks] == [0.0, 4.0, 16.0, 28.0]


@given(
    seconds=st.floats(min_value=0.1, max_value=600.0),
    per_chunk=st.integers(min_value=1, max_value=6),
    first=st.integers(min_value=1, max_value=6),  # the setting is at least 1
    segment=st.sampled_from([2.0, 4.0, 6.0]),
    rotation=st.sampled_from([0, 90, 180, 270]),
    audio=st.booleans(),
)
def test_the_chunk_tasks_cover_every_segment_once_in_order(
    seconds, per_chunk, first, segment, rotation, audio
):
    options = TranscodeSettings(
        orchestrator_id="t",
        segment_seconds=segment,
        segments_per_chunk=per_chunk,
        first_chunk_segments=first,
    )
    plan, tasks = tasks_of(probe(seconds, rotation=rotation, audio=audio), options)
    chunks = [t.spec.video_chunk for t in tasks if t.kind == dag.VIDEO_CHUNK]
    assert [t.name for t in tasks if t.kind == dag.VIDEO_CHUNK] == [
        dag.chunk_name(i) for i in range(len(chunks))
    ]
    next_segment = 0
    for c, planned in zip(chunks, plan.chunks, strict=True):
        # each chunk starts where the previous one ended, on its first segment's boundary
        assert c.first_segment_index == next_segment
        assert dag.to_seconds(c.start) == pytest.approx(next_segment * segment)
        assert dag.to_seconds(c.segment_duration) == segment
        assert c.rotation_degrees == rotation
        next_segment += planned.segment_count
    assert next_segment == plan.segment_count
    assert dag.to_seconds(chunks[-1].end) == pytest.approx(plan.duration, abs=1 / 30)
    names = [t.name for t in tasks]
    assert names[-2:] == ["poster", "assemble"]
    assert ("audio" in names) == audio and (names[0] == "audio") == audio
