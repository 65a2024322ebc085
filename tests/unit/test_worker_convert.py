"""The worker without I/O: protocol specs -> media arguments, media outputs -> results and
object keys, progress throttling, failures for specs that cannot run, backoff, exit texts."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from streamify.core.config import Settings
from streamify.transcode.media.models import (
    AudioInfo,
    AudioOutput,
    Chunk,
    MediaInfo,
    Rendition,
    RenditionChunkOutput,
    Segment,
    VideoInfo,
)
from streamify.transcode.orchestrator import dag
from streamify.transcode.worker import convert as conv
from streamify.transcode.worker.main import BACKOFF_CAP, backoff_delay
from streamify.transcode.worker.task_process import describe_exit
from streamify.transcode.worker.tasks import Progress, TaskContext, child_settings, execute
from streamify.v1 import worker_service_pb2 as pb
from tests.support.keys import SIGNING_KEYS

pytestmark = pytest.mark.unit

SOURCE = pb.SourceRef(bucket="up", key="raw/a.mp4", url="http://s3/up/raw/a.mp4?sig", size_bytes=9)
OUT = pb.OutputRef(bucket="media", prefix="videos/abc/")


def rendition_spec(**kw) -> pb.RenditionSpec:
    values = dict(
        id="720p",
        width=1280,
        height=720,
        bitrate=2_800_000,
        max_bitrate=4_200_000,
        buffer_size=5_600_000,
        profile="high",
        preset="veryfast",
    )
    values.update(kw)
    return pb.RenditionSpec(**values)


def chunk_spec(**kw) -> pb.VideoChunkSpec:
    values = dict(
        source=SOURCE,
        chunk_index=2,
        start=conv.duration(16),
        end=conv.duration(30.5),
        segment_duration=conv.duration(4),
        first_segment_index=4,
        renditions=[
            rendition_spec(),
            rendition_spec(
                id="360p",
                width=640,
                height=360,
                bitrate=800_000,
                max_bitrate=0,
                buffer_size=0,
                profile="",
                preset="",
            ),
        ],
        output=OUT,
        output_ts_offset=conv.duration(1.4),
        rotation_degrees=90,
        frame_rate=29.97002997,
    )
    values.update(kw)
    return pb.VideoChunkSpec(**values)


def test_durations_round_trip_to_the_nanosecond():
    d = conv.duration(1.4)
    assert (d.seconds, d.nanos) == (1, 400_000_000)
    assert conv.seconds(conv.duration(4.011)) == pytest.approx(4.011)
    assert conv.seconds(conv.duration(0)) == 0


def test_video_chunk_spec_becomes_the_media_arguments():
    args = conv.video_chunk_args(chunk_spec())
    assert args.chunk == Chunk(index=2, start=16.0, end=30.5, first_segment_index=4)
    assert args.segment_seconds == 4.0
    assert args.frame_rate == pytest.approx(29.97002997)
    assert (args.rotation, args.ts_offset) == (90, pytest.approx(1.4))
    assert args.renditions == [
        Rendition("720p", 1280, 720, 2_800_000, 4_200_000, 5_600_000, "high", "veryfast"),
        # unset max rate / buffer / profile / preset get sane defaults
        Rendition("360p", 640, 360, 800_000, 800_000, 1_600_000, "high", "veryfast"),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(renditions=[]), "no renditions"),
        (dict(segment_duration=conv.duration(0)), "no segment duration"),
        (dict(end=conv.duration(16)), "time range is empty"),
        (dict(frame_rate=0.0), "no frame rate"),
        (dict(output=pb.OutputRef(prefix="x/")), "no output bucket"),
        (dict(source=pb.SourceRef()), "no source"),
        (dict(renditions=[rendition_spec(width=641)]), "positive and even"),
        (dict(renditions=[rendition_spec(id="../x")]), "invalid rendition id"),
        (dict(renditions=[rendition_spec(id="audio")]), "invalid rendition id"),
        (dict(renditions=[rendition_spec(), rendition_spec()]), "names a rendition twice"),
        (dict(rotation_degrees=45), "invalid rotation"),
    ],
)
def test_video_chunk_specs_that_cannot_run_are_refused(change, message):
    with pytest.raises(conv.SpecError, match=message):
        conv.video_chunk_args(chunk_spec(**change))


def test_audio_and_poster_specs():
    audio = conv.audio_args(
        pb.AudioSpec(
            source=SOURCE,
            segment_duration=conv.duration(4),
            output=OUT,
            output_ts_offset=conv.duration(1.4),
            duration=conv.duration(59.5),
        )
    )
    assert audio == conv.AudioArgs(
        segment_seconds=4.0, bitrate=128_000, ts_offset=pytest.approx(1.4), duration=59.5
    )
    no_end = conv.audio_args(
        pb.AudioSpec(source=SOURCE, bitrate=96_000, segment_duration=conv.duration(4), output=OUT)
    )
    assert (no_end.bitrate, no_end.duration) == (96_000, None)
    poster = conv.poster_args(
        pb.PosterSpec(source=SOURCE, at=conv.duration(3.5), output=OUT, rotation_degrees=-90)
    )
    assert poster == conv.PosterArgs(at_seconds=3.5, max_width=1280, rotation=270)
    with pytest.raises(conv.SpecError, match="no segment duration"):
        conv.audio_args(pb.AudioSpec(source=SOURCE, output=OUT))


def test_probe_result_carries_every_field_and_converts_back():
    info = MediaInfo(
        format="mov,mp4,m4a,3gp,3g2,mj2",
        duration=12.345,
        video=VideoInfo("h264", 1920, 1080, 90, 29.97, "yuv420p10le", 370),
        audio=AudioInfo("aac", 48_000, 2),
    )
    result = conv.probe_result(info)
    assert result.format == info.format
    assert conv.seconds(result.duration) == pytest.approx(12.345)
    v = result.video
    assert (v.codec, v.width, v.height, v.rotation_degrees) == ("h264", 1920, 1080, 90)
    assert (v.frame_rate, v.pixel_format, v.frame_count) == (29.97, "yuv420p10le", 370)
    assert (result.audio.codec, result.audio.sample_rate, result.audio.channels) == (
        "aac",
        48_000,
        2,
    )
    # what the orchestrator plans from is what the worker probed (the probe's wire round trip)
    assert dag.media_info(result) == info


def test_probe_result_without_audio_has_no_audio_message():
    info = MediaInfo("matroska,webm", 3.0, VideoInfo("vp9", 320, 180, 0, 25.0, "yuv420p", 0), None)
    result = conv.probe_result(info)
    assert result.HasField("video") and not result.HasField("audio")
    assert dag.media_info(result).audio is None


def _segments(directory: Path, first: int, durations: list[float]) -> list[Segment]:
    return [
        Segment(first + i, directory / f"seg_{first + i:05d}.m4s", d, 1000 + i)
        for i, d in enumerate(durations)
    ]


def test_chunk_result_keys_and_uploads():
    outputs = [
        RenditionChunkOutput(
            rendition_id=rid,
            segments=_segments(Path(f"/t/out/{rid}"), 4, [4.0, 4.0, 2.5]),
            init_path=Path(f"/t/out/{rid}/init.mp4"),
            codecs=codecs,
            width=w,
            height=h,
        )
        for rid, codecs, w, h in [
            ("720p", "avc1.64001f", 1280, 720),
            ("360p", "avc1.4d401e", 640, 360),
        ]
    ]
    result = conv.chunk_result(outputs, "videos/abc/")
    first = result.renditions[0]
    assert (first.rendition_id, first.codecs, first.init_key) == (
        "720p",
        "avc1.64001f",
        "videos/abc/720p/init.mp4",
    )
    assert [(s.index, s.key, conv.seconds(s.duration), s.size_bytes) for s in first.segments] == [
        (4, "videos/abc/720p/seg_00004.m4s", 4.0, 1000),
        (5, "videos/abc/720p/seg_00005.m4s", 4.0, 1001),
        (6, "videos/abc/720p/seg_00006.m4s", 2.5, 1002),
    ]
    assert result.renditions[1].init_key == "videos/abc/360p/init.mp4"

    uploads = conv.chunk_uploads(outputs, "videos/abc")  # a prefix without "/" gets one
    assert [u.key for u in uploads[:2]] == [
        "videos/abc/720p/init.mp4",
        "videos/abc/720p/seg_00004.m4s",
    ]
    assert uploads[0] == conv.Upload(
        "/t/out/720p/init.mp4",
        "videos/abc/720p/init.mp4",
        "video/mp4",
        "public, max-age=31536000, immutable",
    )
    assert {u.content_type for u in uploads[1:4]} == {"video/iso.segment"}
    assert len(uploads) == 8 and len({u.key for u in uploads}) == 8


def test_audio_and_poster_results_and_uploads():
    output = AudioOutput(
        segments=_segments(Path("/t/audio"), 0, [4.011, 3.989]),
        init_path=Path("/t/audio/init.mp4"),
        codecs="mp4a.40.2",
        sample_rate=48_000,
        channels=2,
        bitrate=128_000,
        duration=8.0,
    )
    result = conv.audio_result(output, "videos/abc/")
    assert (result.codecs, result.init_key) == ("mp4a.40.2", "videos/abc/audio/init.mp4")
    assert [s.key for s in result.segments] == [
        "videos/abc/audio/seg_00000.m4s",
        "videos/abc/audio/seg_00001.m4s",
    ]
    uploads = conv.audio_uploads(output, "videos/abc/")
    assert [u.content_type for u in uploads] == [
        "audio/mp4",
        "video/iso.segment",
        "video/iso.segment",
    ]
    assert conv.poster_result("videos/abc/", 640, 360) == pb.PosterResult(
        key="videos/abc/poster.jpg", width=640, height=360
    )


def test_progress_is_throttled_and_never_goes_back():
    sent: list[pb.ConnectRequest] = []
    assignment = pb.TaskAssignment(task_id="t", lease_id="l")
    slow = Progress(sent.append, assignment, interval=3600)
    slow(0.1)
    slow(0.5)  # within the interval: dropped
    assert [m.progress.fraction for m in sent] == [0.1]
    assert (sent[0].progress.task_id, sent[0].progress.lease_id) == ("t", "l")
    sent.clear()
    fast = Progress(sent.append, assignment, interval=0)
    fast(0.2)
    fast(0.1)  # backwards: dropped
    fast.scaled(0.9, 0.1)(0.5)
    fast(7)  # clamped
    assert [m.progress.fraction for m in sent] == pytest.approx([0.2, 0.95, 1.0])


def _ctx(tmp_path: Path) -> TaskContext:
    progress = Progress(lambda m: None, pb.TaskAssignment(), interval=0)
    return TaskContext(tmp_path, progress)


def test_tasks_that_cannot_run_fail_for_good_without_io(tmp_path):
    nothing = execute(pb.TaskAssignment(task_id="t", lease_id="l"), _ctx(tmp_path))
    assert nothing.failure.retryable is False
    assert (nothing.failure.task_id, nothing.failure.lease_id) == ("t", "l")
    assert "no spec" in nothing.failure.error

    bad = execute(
        pb.TaskAssignment(task_id="t", lease_id="l", video_chunk=chunk_spec(renditions=[])),
        _ctx(tmp_path),
    )
    assert bad.failure == pb.TaskFailure(
        task_id="t",
        lease_id="l",
        error="invalid task: the video chunk task has no renditions",
        retryable=False,
    )


def test_the_task_process_gets_its_logging_settings_and_nothing_secret(tmp_path):
    secrets = [
        "AKIA-id-0123",
        "s3cr3t-key-0123",
        SIGNING_KEYS.split(",")[4].split("=", 1)[1],
        "db-password-0123",
    ]
    settings = Settings(
        s3_access_key_id=secrets[0],
        s3_secret_access_key=secrets[1],
        signing_keys=SIGNING_KEYS,
        database_url=f"postgresql://u:{secrets[3]}@db/streamify",
        log_level="debug",
        log_format="json",
        data_dir=tmp_path,
    )
    payload = child_settings(settings)
    text = json.dumps(payload)
    assert not [s for s in secrets if s in text], text
    again = Settings(**payload)
    assert (again.log_level, again.log_format) == ("debug", "json")
    assert again.signing_keys is None and again.s3.secret_access_key is None


def test_backoff_grows_to_its_cap_with_jitter():
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (4, 8.0), (5, 10.0), (49, 10.0)]:
        delays = {backoff_delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1, "jittered"
    assert backoff_delay(100) <= BACKOFF_CAP


def test_exit_descriptions():
    assert describe_exit(-signal.SIGKILL) == "signal 9, SIGKILL"
    assert describe_exit(-signal.SIGSEGV) == "signal 11, SIGSEGV"
    assert describe_exit(3) == "exit code 3"
