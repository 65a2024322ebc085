"""The whole transcode pipeline for real: a user uploads a clip through the Upload service
(pre-signed PUT to SeaweedFS, CompleteUpload), the "video uploaded" event goes through the
durable queue to the REAL orchestrator, two REAL worker processes (``python -m streamify.cli
worker``) probe, encode the chunks, the audio and the poster into the media bucket, the
orchestrator assembles the playlists and the Metadata service has the video READY.

The output is then downloaded from the media bucket and checked with PyAV the way a player
uses it (see tests/support/transcode.py `check_output`).
"""

from __future__ import annotations

import pytest

from streamify.transcode.orchestrator import dag
from streamify.v1.video_pb2 import VideoStatus
from tests.support import clips
from tests.support.transcode import (
    SUCCEEDED,
    check_output,
    check_ready_video,
    describe,
    running_mesh,
)

pytestmark = pytest.mark.integration

DURATION = 6.0  # 6 s at 1 s segments, 2 per chunk: three chunk tasks
FPS = 30


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory, seaweedfs):
    async with running_mesh(tmp_path_factory.mktemp("e2e"), seaweedfs, upload=True, workers=2) as m:
        yield m


async def test_an_uploaded_clip_becomes_a_ready_hls_ladder(mesh, tmp_path):
    source = clips.make_clip(
        tmp_path / "holiday.mp4", width=640, height=360, fps=FPS, duration=DURATION, audio=True
    )
    video_id = await mesh.upload(source, title="Holiday")

    job = await mesh.finished_job(video_id)  # created from the queue, not by the test
    assert job.state == SUCCEEDED, f"{describe(job)}\n{mesh.worker_logs()}"

    # Every task ran once, spread over the worker processes, none of which died.
    assert all(t.state == dag.SUCCEEDED and t.attempts == 1 for t in job.tasks), describe(job)
    assert job.completed_tasks == job.total_tasks == len(job.tasks)
    assert job.HasField("time_to_first_playable") and job.HasField("end_time")
    assert all(w.alive for w in mesh.workers)

    output = check_output(
        mesh,
        video_id,
        tmp_path / "out",
        duration=DURATION,
        fps=FPS,
        display=(640, 360),
        audio_duration=DURATION,
    )
    # The ladder stops at the source: 360p and 240p, never taller than 360.
    assert output.renditions == {"360p": (640, 360), "240p": (426, 240)}

    video = await mesh.final_video(video_id)
    assert video.status == VideoStatus.VIDEO_STATUS_READY, video
    assert video.title == "Holiday" and video.source_size_bytes == source.stat().st_size
    check_ready_video(video, output, video_id, duration=DURATION, fps=FPS)
    assert [r.id for r in video.renditions] == ["360p", "240p"]

    # Exactly the source's 180 frames in six 1 s segments, made by four chunk tasks (a one-segment
    # first chunk for early playback, then two segments each): the AAC padding that makes the
    # container 23 ms longer than the picture is not video.
    assert (len(output.segments["360p"]), len(output.segments["240p"])) == (6, 6), (
        "the plan held the last picture over the container's AAC padding",
        output.segments,
    )
    assert output.frames == {"360p": 180, "240p": 180}
    assert sorted(t.id for t in job.tasks) == sorted(
        ["probe", "audio", "poster", "assemble", *(dag.chunk_name(i) for i in range(4))]
    ), describe(job)
    assert video.duration.seconds == 6 and video.duration.nanos == 0, video.duration
