"""A hostile file changes nothing that is not its own: a few KB whose header claims days of
video ends FAILED with a reason, and the orchestrator plans nothing past the probe.

Through the real Upload service, the queue, the orchestrator and a PyAV worker process."""

from __future__ import annotations

import pytest

from streamify.v1 import transcode_service_pb2 as api
from streamify.v1.video_pb2 import VideoStatus
from tests.support import clips
from tests.support.transcode import describe, running_mesh

pytestmark = pytest.mark.security


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory, seaweedfs):
    root = tmp_path_factory.mktemp("hostile")
    async with running_mesh(root, seaweedfs, upload=True, workers=1) as m:
        yield m


@pytest.mark.parametrize(
    ("name", "seconds_apart", "size_of", "phrase"),
    [
        # 3 frames 100,000 s apart in Matroska: 1.4 KB that says it lasts 83 hours
        ("days.mkv", 100_000, "83:20:00", "the file's header is wrong or the file is truncated"),
        # 3 frames 1,000 s apart in MP4: 1.6 KB that says it lasts 50 minutes
        ("minutes.mp4", 1000, "50:00", "the file's header is wrong or the file is truncated"),
    ],
)
async def test_a_tiny_file_claiming_a_long_duration_fails_before_anything_is_planned(
    mesh, tmp_path, name, seconds_apart, size_of, phrase
):
    source = clips.sparse_frames_clip(tmp_path / name, seconds_apart=seconds_apart)
    assert source.stat().st_size < 4096
    video_id = await mesh.upload(
        source, content_type="video/x-matroska" if name.endswith(".mkv") else "video/mp4"
    )

    job = await mesh.finished_job(video_id)
    assert job.state == api.JobState.JOB_STATE_FAILED, describe(job)
    assert phrase in job.failure_reason and size_of in job.failure_reason, job.failure_reason
    assert [t.id for t in job.tasks] == ["probe"], describe(job)
    assert job.total_tasks == 0  # no plan was stored
    video = await mesh.final_video(video_id)
    assert video.status == VideoStatus.VIDEO_STATUS_FAILED
    assert video.failure_reason == job.failure_reason
