"""The DAG's rules in full: the probe's result as the planner sees it, every field of every task
spec a worker receives, what a worker must send back, and when a job publishes and assembles."""

from __future__ import annotations

import json

import pytest
from google.protobuf.duration_pb2 import Duration
from hypothesis import given
from hypothesis import strategies as st

from streamify.core import names
from streamify.core.config import TranscodeSettings
from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.orchestrator import dag
from streamify.v1 import transcode_service_pb2 as tapi
from streamify.v1 import worker_service_pb2 as wapi

pytestmark = pytest.mark.unit

SOURCE = wapi.SourceRef(bucket="uploads", key="sources/v1/u1", size_bytes=1234)
OUTPUT = wapi.OutputRef(bucket="media", prefix="videos/v1/")
OPTIONS = TranscodeSettings(
    orchestrator_id="t",
    segment_seconds=4.0,
    segments_per_chunk=3,
    first_chunk_segments=1,
    audio_bitrate=96_000,
    poster_max_width=640,
)


def probe(
    seconds: float = 20.0,
    *,
    width: int = 1920,
    height: int = 1080,
    rotation: int = 0,
    sar: float = 0.0,
    channels: int | None = 1,
    clock_jumps: int = 0,
) -> wapi.ProbeResult:
    result = wapi.ProbeResult(
        format="matroska,webm", duration=dag.seconds(seconds), clock_jumps=clock_jumps
    )
    result.video.CopyFrom(
        wapi.VideoStreamInfo(
            codec="vp9",
            width=width,
            height=height,
            rotation_degrees=rotation,
            frame_rate=30.0,
            pixel_format="yuv420p",
            frame_count=600,
            sample_aspect_ratio=sar,
            duration=dag.seconds(seconds),
        )
    )
    if channels is not None:
        result.audio.CopyFrom(
            wapi.AudioStreamInfo(codec="opus", sample_rate=48000, channels=channels)
        )
    return result


def plan_of(
    p: wapi.ProbeResult, options: TranscodeSettings = OPTIONS, size: int = 50_000_000
) -> dag.Plan:
    return dag.make_plan(dag.media_info(p, size), options)


def d(seconds: float) -> Duration:
    return dag.seconds(seconds)


# --- the probe, as the planner sees it --------------------------------------------------------


def test_the_probe_result_is_read_field_by_field():
    info = dag.media_info(probe(12.5, sar=4 / 3, clock_jumps=2), 5_000)
    assert (info.format, info.duration, info.size_bytes, info.clock_jumps) == (
        "matroska,webm",
        12.5,
        5_000,
        2,
    )
    v = info.video
    assert (v.codec, v.width, v.height, v.rotation_degrees, v.frame_rate) == (
        "vp9",
        1920,
        1080,
        0,
        30.0,
    )
    assert (v.pixel_format, v.frame_count, v.sample_aspect_ratio, v.duration) == (
        "yuv420p",
        600,
        4 / 3,
        12.5,
    )
    a = info.audio
    assert (a.codec, a.sample_rate, a.channels) == ("opus", 48000, 1)
    assert dag.media_info(probe()).size_bytes == 0  # unknown size


def test_a_probe_without_a_pixel_aspect_ratio_means_square_pixels():
    assert dag.media_info(probe(sar=0.0)).video.sample_aspect_ratio == 1.0
    assert dag.media_info(wapi.ProbeResult()).video is None  # and no video stream: no VideoInfo


def test_an_anamorphic_source_is_planned_at_its_display_size():
    plan = plan_of(probe(width=1440, height=1080, sar=4 / 3))
    assert (plan.renditions[0].width, plan.renditions[0].height) == (1920, 1080)


# --- the plan -----------------------------------------------------------------------------------


def test_the_plan_records_the_source_and_the_audio_it_will_encode():
    plan = plan_of(probe(channels=6))
    assert (plan.source_format, plan.source_codec) == ("matroska,webm", "vp9")
    assert (plan.has_audio, plan.audio_channels, plan.audio_bitrate) == (True, 6, 96_000)
    assert plan_of(probe(channels=1)).audio_channels == 1
    assert plan_of(probe(channels=0)).audio_channels == 2  # the probe could not tell: stereo
    silent = plan_of(probe(channels=None))
    assert not silent.has_audio and silent.audio_channels == 2


def test_the_poster_is_a_frame_a_tenth_in_or_the_first_frame_of_a_short_clip():
    assert plan_of(probe(20.0)).poster_at == 2.0
    assert plan_of(probe(1.5)).poster_at == 0.0
    assert plan_of(probe(3600.0)).poster_at == 30.0


def test_the_size_limit_comes_from_the_options():
    small = TranscodeSettings(orchestrator_id="t", max_width=1280, max_height=720)
    with pytest.raises(MediaError) as caught:
        plan_of(probe(width=1920, height=1080), small)
    assert caught.value.reason == Reason.TOO_LARGE
    assert plan_of(probe(width=720, height=1280), small).renditions[0].id == "720p"  # portrait 720p
    with pytest.raises(MediaError):
        plan_of(probe(width=1600, height=700), small)  # wider than 1280, though not taller than 720


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_a_source_without_a_duration_is_refused_for_good(seconds):
    p = probe(1.0)
    p.duration.CopyFrom(d(seconds))
    p.video.duration.CopyFrom(d(seconds))
    with pytest.raises(MediaError) as caught:
        plan_of(p)
    assert caught.value.message == "the video has no duration: the file may be truncated"
    assert caught.value.reason == Reason.CORRUPT and not caught.value.retryable


def test_chunks_end_on_the_frame_grid():
    # 8.01 s at 30 fps is 240 frames, exactly 8 s: two 4 s segments, not a third without frames
    plan = plan_of(probe(8.01), TranscodeSettings(orchestrator_id="t", segments_per_chunk=1))
    assert [(c.start, c.end) for c in plan.chunks] == [(0.0, 4.0), (4.0, 8.0)]


def test_a_source_whose_clock_jumps_is_one_chunk_read_from_the_start():
    plan = plan_of(probe(40.0, clock_jumps=1))
    assert [(c.start, c.first_segment_index, c.segment_count) for c in plan.chunks] == [
        (0.0, 0, 10)
    ]


def test_a_plan_stored_before_the_audio_and_poster_fields_existed_still_loads():
    plan = plan_of(probe())
    old = json.loads(plan.to_json())
    for name in ("audio_channels", "audio_bitrate", "poster_at", "source_format", "source_codec"):
        del old[name]
    loaded = dag.Plan.from_json(json.dumps(old))
    assert (loaded.audio_channels, loaded.audio_bitrate, loaded.poster_at) == (2, 128_000, 0.0)
    assert (loaded.source_format, loaded.source_codec) == ("", "")
    assert loaded.chunks == plan.chunks and loaded.renditions == plan.renditions


# --- the tasks ----------------------------------------------------------------------------------


def test_every_task_spec_carries_exactly_what_its_worker_needs():
    plan = plan_of(probe(20.0, rotation=90))  # 5 segments: chunks of 1, 3 and 1
    tasks = dag.planned_tasks(plan, SOURCE, OUTPUT, OPTIONS)
    renditions = [
        wapi.RenditionSpec(
            id=r.id,
            width=r.width,
            height=r.height,
            bitrate=r.bitrate,
            max_bitrate=r.max_bitrate,
            buffer_size=r.buffer_size,
            profile=r.profile,
            preset=r.preset,
        )
        for r in plan.renditions
    ]
    assert renditions[0] == wapi.RenditionSpec(
        id="1080p",
        width=1080,
        height=1920,
        bitrate=5_000_000,
        max_bitrate=7_500_000,
        buffer_size=10_000_000,
        profile="high",
        preset="veryfast",
    )

    def chunk(index: int, start: float, end: float, first: int) -> wapi.TaskAssignment:
        return wapi.TaskAssignment(
            video_chunk=wapi.VideoChunkSpec(
                source=SOURCE,
                chunk_index=index,
                start=d(start),
                end=d(end),
                segment_duration=d(4.0),
                first_segment_index=first,
                renditions=renditions,
                output=OUTPUT,
                output_ts_offset=d(1.0),
                rotation_degrees=90,
                frame_rate=30.0,
            )
        )

    expected = [
        dag.PlannedTask(
            "audio",
            dag.AUDIO,
            0,
            wapi.TaskAssignment(
                audio=wapi.AudioSpec(
                    source=SOURCE,
                    bitrate=96_000,
                    segment_duration=d(4.0),
                    output=OUTPUT,
                    output_ts_offset=d(1.0),
                    duration=d(20.0),
                )
            ),
        ),
        dag.PlannedTask("chunk-0000", dag.VIDEO_CHUNK, 0, chunk(0, 0.0, 4.0, 0)),
        dag.PlannedTask("chunk-0001", dag.VIDEO_CHUNK, 1, chunk(1, 4.0, 16.0, 1)),
        dag.PlannedTask("chunk-0002", dag.VIDEO_CHUNK, 2, chunk(2, 16.0, 20.0, 4)),
        dag.PlannedTask(
            "poster",
            dag.POSTER,
            0,
            wapi.TaskAssignment(
                poster=wapi.PosterSpec(
                    source=SOURCE, at=d(2.0), max_width=640, output=OUTPUT, rotation_degrees=90
                )
            ),
        ),
        dag.PlannedTask("assemble", dag.ASSEMBLE, 0, wapi.TaskAssignment()),
    ]
    assert tasks == expected


def test_the_probe_task_reads_the_source():
    assert dag.probe_task(SOURCE) == dag.PlannedTask(
        "probe", dag.PROBE, 0, wapi.TaskAssignment(probe=wapi.ProbeSpec(source=SOURCE))
    )


def test_each_task_kind_expects_its_own_result():
    assert dag.expected_output(dag.PROBE) == "probe"
    assert dag.expected_output(dag.VIDEO_CHUNK) == "video_chunk"
    assert dag.expected_output(dag.AUDIO) == "audio"
    assert dag.expected_output(dag.POSTER) == "poster"
    for kind, name in [
        (dag.PROBE, "probe"),
        (dag.VIDEO_CHUNK, "video_chunk"),
        (dag.AUDIO, "audio"),
        (dag.POSTER, "poster"),
    ]:
        assert name in wapi.TaskResult.DESCRIPTOR.fields_by_name, kind  # a real oneof member


@pytest.mark.parametrize(
    "resource",
    [
        "transcodeJobs/abc/tasks/x/y",
        "transcodeJobs/abc/tasks",
        "transcodeJobs//tasks/x",
        "transcodeJobs/abc/jobs/x",
        "jobs/abc/tasks/x",
        "",
    ],
)
def test_a_malformed_task_name_names_no_task(resource):
    assert names.parse_task(resource) is None


@given(
    seconds=st.integers(min_value=0, max_value=10**6),
    nanos=st.integers(min_value=0, max_value=999_999_999),
)
def test_durations_round_trip_to_the_nanosecond(seconds, nanos):
    duration = Duration(seconds=seconds, nanos=nanos)
    assert dag.seconds(dag.to_seconds(duration)) == duration


# --- job states, failures, progress --------------------------------------------------------------


def test_every_job_state_is_either_active_or_terminal():
    states = set(tapi.JobState.values()) - {tapi.JobState.JOB_STATE_UNSPECIFIED}
    assert states == dag.JOB_ACTIVE | dag.JOB_TERMINAL
    assert not dag.JOB_ACTIVE & dag.JOB_TERMINAL
    assert {dag.JOB_QUEUED, dag.JOB_RUNNING} == dag.JOB_ACTIVE


def test_the_final_publication_mark_is_past_any_chunk_count_and_fits_the_integer_column():
    chunks_of_a_day = 24 * 3600  # a day-long video in chunks of one 1 s segment
    assert (
        chunks_of_a_day < dag.FINAL_PUBLISHED < 2**31
    )  # the job table's published_run is an INTEGER


def test_a_worker_that_gives_no_reason_still_gets_one_in_the_job():
    assert (
        dag.failure_reason("poster", "  ", 3, True)
        == "the poster failed 3 times; last error: the worker gave no reason"
    )
    assert (
        dag.failure_reason("audio", "x", 2, True) == "the audio track failed 2 times; last error: x"
    )
    assert (
        dag.failure_reason("probe", "x", 2, True)
        == "probing the source failed 2 times; last error: x"
    )
    assert (
        dag.lost_worker_error("", "stopped heartbeating")
        == "worker ? stopped heartbeating while running the task"
    )


def test_the_leading_run_never_counts_chunks_beyond_the_plan():
    assert dag.leading_run([0, 1, 2, 3, 4], 3) == 3
    assert dag.playable_run([0, 1, 2, 3], 2, has_audio=True, audio_done=True) == 2


def test_the_first_chunk_is_published_as_soon_as_it_is_done():
    assert dag.should_publish(1, 0)
    assert not dag.should_publish(2, 2) and not dag.should_publish(1, 2)


def test_assemble_needs_a_plan_with_tasks_besides_itself():
    assert not dag.assemble_ready({"assemble": dag.PENDING})
    assert not dag.assemble_ready(
        {"probe": dag.SUCCEEDED, "assemble": dag.PENDING, "poster": dag.FAILED}
    )


@pytest.mark.parametrize(
    ("job", "plan", "states", "stage"),
    [
        (dag.JOB_QUEUED, False, {}, "queued"),
        (dag.JOB_RUNNING, False, {"probe": dag.RUNNING}, "probing"),
        (
            dag.JOB_RUNNING,
            True,
            {"probe": dag.SUCCEEDED, "chunk-0000": dag.RUNNING, "assemble": dag.PENDING},
            "encoding",
        ),
        (
            dag.JOB_RUNNING,
            True,
            {"probe": dag.SUCCEEDED, "chunk-0000": dag.SUCCEEDED, "assemble": dag.PENDING},
            "assembling",
        ),
        (
            dag.JOB_RUNNING,
            True,
            {"probe": dag.SUCCEEDED, "chunk-0000": dag.RUNNING, "assemble": dag.RUNNING},
            "assembling",
        ),
        (dag.JOB_SUCCEEDED, True, {}, "done"),
        (dag.JOB_FAILED, True, {}, "failed"),
        (dag.JOB_CANCELLED, True, {}, "cancelled"),
    ],
)
def test_the_stage_a_person_sees(job, plan, states, stage):
    assert dag.stage(job, plan, states) == stage
