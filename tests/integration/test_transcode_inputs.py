"""Odd and bad sources through the REAL transcode pipeline (real orchestrator, two real worker
processes, SeaweedFS): each job ends READY with a valid ladder (checked with PyAV from the
media bucket) or FAILED with a reason a person understands; none stays stuck.

The sources are put straight into the uploads bucket (the Upload service refuses 0 bytes
before anything is stored) and submitted with CreateTranscodeJob. The orchestrator of this
module refuses sources larger than 720x480 (transcode_max_width/height).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from streamify.v1.video_pb2 import VideoStatus
from tests.support import clips
from tests.support.transcode import (
    FAILED,
    SUCCEEDED,
    check_output,
    check_ready_video,
    describe,
    running_mesh,
)

pytestmark = pytest.mark.integration

MAX_W, MAX_H = 720, 480


@dataclass(frozen=True)
class Ready:
    """The job ends READY: the ladder of a `display`-sized picture, `duration` s at `fps`."""

    display: tuple[int, int]
    duration: float
    fps: float | Fraction = 30
    audio: float | None = None  # seconds of sound, None: silent
    renditions: int = 1


@dataclass(frozen=True)
class Failed:
    """The job ends FAILED and its reason starts with / contains `phrase`."""

    phrase: str


def too_large_clip(path: Path) -> Path:
    return clips.make_clip(path, width=800, height=200, duration=0.5, audio=False)


CASES: list[tuple[str, str, Callable[[Path], Path], Ready | Failed]] = [
    ("zero-bytes", "empty.mp4", clips.empty_file, Failed("the file is empty")),
    (
        "random-bytes",
        "noise.mp4",
        clips.random_bytes_file,
        Failed("the file is not a video, or it is truncated or corrupt"),
    ),
    # (cut short with the index up front, the part that arrived is transcoded, as by the ffmpeg
    # CLI: test_transcode_corpus "truncated-mp4-faststart"; without its index, nothing can be)
    (
        "truncated-mp4",
        "cut.mp4",
        lambda p: clips.truncated_clip(p, faststart=False),
        Failed("it starts like an MP4/MOV file but its index (the moov box) is missing"),
    ),
    ("moov-at-end", "moov.mp4", clips.moov_at_end_clip, Ready((320, 180), 3.0, audio=3.0)),
    (
        "audio-only",
        "song.m4a",
        clips.audio_only_clip,
        Failed("the file is not a video: no video stream found"),
    ),
    ("video-only", "silent.mp4", clips.video_only_clip, Ready((320, 180), 3.0)),
    ("rotated-90", "phone.mp4", clips.rotated_clip, Ready((180, 320), 2.0, audio=2.0)),
    (
        "vfr",
        "vfr.mp4",
        clips.vfr_clip,
        Ready((320, 180), 4.0, fps=Fraction(30000, 1001), audio=4.0),
    ),
    ("odd-641x359", "odd.mp4", clips.odd_size_clip, Ready((641, 359), 2.0, renditions=2)),
    ("10-bit", "tenbit.mp4", clips.ten_bit_clip, Ready((320, 180), 2.0)),
    ("4:2:2", "422.mkv", clips.four_two_two_clip, Ready((320, 180), 2.0)),
    ("half-second", "short.mp4", clips.short_clip, Ready((320, 180), 0.5, audio=0.5)),
    ("long-gop", "gop.mp4", clips.long_gop_clip, Ready((320, 180), 4.0)),
    (
        "beyond-max-size",
        "wide.mp4",
        too_large_clip,
        Failed(f"the video is 800x200, larger than the maximum {MAX_W}x{MAX_H}"),
    ),
]


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory, seaweedfs):
    root = tmp_path_factory.mktemp("inputs")
    async with running_mesh(
        root, seaweedfs, workers=2, transcode_max_width=MAX_W, transcode_max_height=MAX_H
    ) as m:
        yield m


@pytest.mark.parametrize(
    ("name", "make", "expected"), [(c[1], c[2], c[3]) for c in CASES], ids=[c[0] for c in CASES]
)
async def test_a_source_ends_ready_with_a_valid_ladder_or_failed_with_a_reason(
    mesh, tmp_path, name, make, expected
):
    source = make(tmp_path / name)
    video_id = await mesh.submit(source, title=name)

    job = await mesh.finished_job(video_id)  # bounded: never stuck
    video = await mesh.final_video(video_id)
    if isinstance(expected, Failed):
        assert job.state == FAILED, f"{describe(job)}\n{mesh.worker_logs()}"
        assert expected.phrase in job.failure_reason, describe(job)
        assert "Signature" not in job.failure_reason and "X-Amz" not in job.failure_reason
        assert video.status == VideoStatus.VIDEO_STATUS_FAILED
        assert video.failure_reason == job.failure_reason
        return
    assert job.state == SUCCEEDED, f"{describe(job)}\n{mesh.worker_logs()}"
    output = check_output(
        mesh,
        video_id,
        tmp_path / "out",
        duration=expected.duration,
        fps=expected.fps,
        display=expected.display,
        audio_duration=expected.audio,
    )
    assert len(output.renditions) == expected.renditions, output.renditions
    check_ready_video(video, output, video_id, duration=expected.duration, fps=float(expected.fps))
