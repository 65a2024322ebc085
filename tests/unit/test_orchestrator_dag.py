"""The orchestrator's DAG logic and playlist assembly, without I/O."""

from __future__ import annotations

import pytest

from streamify.core import names
from streamify.core.config import TranscodeSettings
from streamify.transcode.media.errors import MediaError
from streamify.transcode.orchestrator import dag
from streamify.transcode.orchestrator.assembly import (
    FINAL_CACHE_CONTROL,
    GROWING_CACHE_CONTROL,
    AssemblyError,
    assemble,
)
from streamify.v1 import worker_service_pb2 as wapi

pytestmark = pytest.mark.unit

OPTIONS = TranscodeSettings(orchestrator_id="test", segment_seconds=4.0, segments_per_chunk=1)
SOURCE = wapi.SourceRef(bucket="uploads", key="sources/v1/u1", size_bytes=1234)
OUTPUT = wapi.OutputRef(bucket="media", prefix="videos/v1/")


def probe(
    *,
    video: bool = True,
    audio: bool = True,
    seconds: float = 10.0,
    width: int = 640,
    height: int = 360,
) -> wapi.ProbeResult:
    result = wapi.ProbeResult(format="mov,mp4,m4a,3gp,3g2,mj2", duration=dag.seconds(seconds))
    if video:
        result.video.CopyFrom(
            wapi.VideoStreamInfo(
                codec="h264", width=width, height=height, frame_rate=30.0, pixel_format="yuv420p"
            )
        )
    if audio:
        result.audio.CopyFrom(wapi.AudioStreamInfo(codec="aac", sample_rate=48000, channels=2))
    return result


def plan_of(p: wapi.ProbeResult, options: TranscodeSettings = OPTIONS) -> dag.Plan:
    return dag.make_plan(dag.media_info(p, 1234), options)


def test_plan_of_a_640x360_clip_never_upscales_and_splits_on_the_segment_grid():
    plan = plan_of(probe())
    assert [r.id for r in plan.renditions] == ["360p", "240p"]
    assert (plan.renditions[0].width, plan.renditions[0].height) == (640, 360)
    assert plan.frame_rate == 30.0 and plan.has_audio and plan.audio_channels == 2
    assert [(c.start, c.end, c.first_segment_index) for c in plan.chunks] == [
        (0.0, 4.0, 0),
        (4.0, 8.0, 1),
        (8.0, 10.0, 2),
    ]
    assert plan.segment_count == 3
    assert 0 < plan.poster_at < plan.duration
    assert dag.Plan.from_json(plan.to_json()) == plan


def test_more_segments_per_chunk_make_fewer_chunks():
    plan = plan_of(
        probe(seconds=40),
        TranscodeSettings(orchestrator_id="t", segments_per_chunk=4, first_chunk_segments=4),
    )
    assert [c.segment_count for c in plan.chunks] == [4, 4, 2]


def test_the_first_chunk_is_short_so_the_video_is_playable_early():
    plan = plan_of(probe(seconds=40), TranscodeSettings(orchestrator_id="t", segments_per_chunk=4))
    assert [c.segment_count for c in plan.chunks] == [1, 4, 4, 1]
    assert [c.first_segment_index for c in plan.chunks] == [0, 1, 5, 9]


def test_a_source_without_video_cannot_be_planned_with_a_reason_a_person_understands():
    with pytest.raises(MediaError) as err:
        plan_of(probe(video=False))
    assert err.value.message == "the file is not a video: no video stream found"
    assert not err.value.retryable


def test_a_source_beyond_the_size_limit_cannot_be_planned():
    with pytest.raises(MediaError, match="larger than the maximum"):
        plan_of(probe(width=8192, height=4320))


def test_planned_tasks_audio_first_then_chunks_poster_and_assemble():
    plan = plan_of(probe())
    tasks = dag.planned_tasks(plan, SOURCE, OUTPUT, OPTIONS)
    assert [t.name for t in tasks] == [
        "audio",
        "chunk-0000",
        "chunk-0001",
        "chunk-0002",
        "poster",
        "assemble",
    ]
    audio = tasks[0].spec.audio
    assert audio.source == SOURCE and audio.output == OUTPUT
    assert dag.to_seconds(audio.duration) == pytest.approx(10.0)
    assert dag.to_seconds(audio.output_ts_offset) == pytest.approx(plan.ts_offset)
    chunk = tasks[2].spec.video_chunk
    assert chunk.chunk_index == 1 and chunk.first_segment_index == 1
    assert dag.to_seconds(chunk.start) == 4.0 and dag.to_seconds(chunk.end) == 8.0
    assert dag.to_seconds(chunk.segment_duration) == 4.0
    assert [r.id for r in chunk.renditions] == ["360p", "240p"]
    assert chunk.renditions[0].max_bitrate > chunk.renditions[0].bitrate
    assert chunk.frame_rate == 30.0 and chunk.output_ts_offset == audio.output_ts_offset
    poster = tasks[4].spec.poster
    assert poster.max_width == OPTIONS.poster_max_width and poster.output == OUTPUT
    assert tasks[5].kind == dag.ASSEMBLE and tasks[5].spec.WhichOneof("spec") is None


def test_a_silent_source_has_no_audio_task():
    tasks = dag.planned_tasks(plan_of(probe(audio=False)), SOURCE, OUTPUT, OPTIONS)
    assert "audio" not in [t.name for t in tasks]


def test_task_resource_names_round_trip():
    resource = names.task("abc", "chunk-0007")
    assert resource == "transcodeJobs/abc/tasks/chunk-0007"
    assert names.parse_task(resource) == ("abc", "chunk-0007")
    assert names.parse_task("jobs/abc/tasks/x") is None


def test_failures_retry_until_the_attempts_run_out_unless_not_retryable():
    assert dag.after_failure(1, 3, True) == dag.RETRY
    assert dag.after_failure(2, 3, True) == dag.RETRY
    assert dag.after_failure(3, 3, True) == dag.FAIL_JOB
    assert dag.after_failure(1, 3, False) == dag.FAIL_JOB
    reason = dag.failure_reason("chunk-0001", "encoder crashed", 3, True)
    assert reason == "chunk-0001 failed 3 times; last error: encoder crashed"
    assert (
        dag.failure_reason("probe", "the file is not a video", 1, False)
        == "the file is not a video"
    )


def test_the_leading_run_stops_at_the_first_missing_chunk():
    assert dag.leading_run([], 4) == 0
    assert dag.leading_run([1, 2, 3], 4) == 0
    assert dag.leading_run([0, 1, 3], 4) == 2
    assert dag.leading_run([0, 1, 2, 3], 4) == 4


def test_playable_needs_chunk_zero_and_the_audio():
    assert dag.playable_run([0, 1], 3, has_audio=True, audio_done=False) == 0
    assert dag.playable_run([0, 1], 3, has_audio=True, audio_done=True) == 2
    assert dag.playable_run([0], 3, has_audio=False, audio_done=False) == 1
    assert dag.should_publish(2, 1) and not dag.should_publish(1, 1)
    assert not dag.should_publish(0, 0)
    assert not dag.should_publish(3, dag.FINAL_PUBLISHED)


def test_assemble_becomes_ready_only_when_every_other_task_succeeded():
    states = {
        "probe": dag.SUCCEEDED,
        "chunk-0000": dag.SUCCEEDED,
        "audio": dag.RUNNING,
        "poster": dag.SUCCEEDED,
        "assemble": dag.PENDING,
    }
    assert not dag.assemble_ready(states)
    states["audio"] = dag.SUCCEEDED
    assert dag.assemble_ready(states)
    assert not dag.assemble_ready({"probe": dag.SUCCEEDED})  # no plan yet
    assert dag.stage(dag.JOB_RUNNING, True, states) == "assembling"
    assert dag.stage(dag.JOB_RUNNING, False, {"probe": dag.RUNNING}) == "probing"


# --- assembly --------------------------------------------------------------------------------


def segment(prefix: str, index: int, seconds: float, size: int) -> wapi.SegmentInfo:
    return wapi.SegmentInfo(
        index=index,
        key=f"{prefix}seg_{index:05d}.m4s",
        duration=dag.seconds(seconds),
        size_bytes=size,
    )


def chunk_results(plan: dag.Plan) -> dict[int, wapi.ChunkResult]:
    out = {}
    for c in plan.chunks:
        result = wapi.ChunkResult()
        for r in plan.renditions:
            rc = result.renditions.add(
                rendition_id=r.id, codecs="avc1.64001e", init_key=f"videos/v1/{r.id}/init.mp4"
            )
            for i in range(c.first_segment_index, c.first_segment_index + c.segment_count):
                length = min(4.0, plan.duration - 4.0 * i)
                rc.segments.append(segment(f"videos/v1/{r.id}/", i, length, 100_000 * (i + 1)))
        out[c.index] = result
    return out


def audio_result(plan: dag.Plan) -> wapi.AudioResult:
    return wapi.AudioResult(
        codecs="mp4a.40.2",
        init_key="videos/v1/audio/init.mp4",
        segments=[
            segment("videos/v1/audio/", i, min(4.0, plan.duration - 4.0 * i), 64_000)
            for i in range(plan.segment_count)
        ],
    )


def test_progressive_playlists_cover_only_the_leading_run():
    plan = plan_of(probe())
    out = assemble("v1", plan, chunk_results(plan), audio_result(plan), 2, final=False)
    files = {f.key: f for f in out.files}
    assert list(files)[-1] == "videos/v1/master.m3u8"
    video = files["videos/v1/360p/index.m3u8"].body
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in video and "#EXT-X-ENDLIST" not in video
    assert "seg_00001.m4s" in video and "seg_00002.m4s" not in video
    assert '#EXT-X-MAP:URI="init.mp4"' in video
    audio = files["videos/v1/audio/index.m3u8"].body
    assert "seg_00001.m4s" in audio and "seg_00002.m4s" not in audio  # trimmed to the run
    assert all(f.cache_control == GROWING_CACHE_CONTROL for f in out.files)
    assert out.segment_count == 2


def test_final_playlists_measure_bandwidth_and_end():
    plan = plan_of(probe())
    out = assemble("v1", plan, chunk_results(plan), audio_result(plan), 3, final=True)
    files = {f.key: f for f in out.files}
    video = files["videos/v1/240p/index.m3u8"].body
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in video and video.rstrip().endswith("#EXT-X-ENDLIST")
    assert "#EXT-X-TARGETDURATION:4" in video
    master = files["videos/v1/master.m3u8"].body
    assert 'CODECS="avc1.64001e,mp4a.40.2"' in master and "RESOLUTION=640x360" in master
    assert master.index("360p/index.m3u8") < master.index("240p/index.m3u8")
    assert all(f.cache_control == FINAL_CACHE_CONTROL for f in out.files)
    top = out.renditions[0]
    # peak: segment 2 is 300 kB in 2 s = 1.2 Mbit/s, plus the audio's peak (64 kB in 2 s)
    assert top.bandwidth == 1_200_000 + 256_000
    assert 0 < top.average_bandwidth < top.bandwidth
    assert top.codecs == "avc1.64001e,mp4a.40.2" and top.frame_rate == 30.0
    assert f"BANDWIDTH={top.bandwidth}," in master


def test_a_missing_segment_is_an_assembly_error():
    plan = plan_of(probe())
    chunks = chunk_results(plan)
    del chunks[1].renditions[0].segments[0]
    with pytest.raises(AssemblyError, match="rendition 360p: segment 1 is missing"):
        assemble("v1", plan, chunks, audio_result(plan), 3, final=True)
