"""Two orchestrator replicas on one PostgreSQL database, one fake worker on each: tasks are
claimed with row-level leases (FOR UPDATE SKIP LOCKED), so every task of every job runs
exactly once, whichever replica made it runnable, and results reach the DAG through either."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from streamify.transcode.orchestrator import dag
from streamify.v1 import transcode_service_pb2 as api
from streamify.v1.video_pb2 import VideoStatus
from tests.integration.test_orchestrator import (  # noqa: F401  (env is a fixture)
    SERVICE,
    SUCCEEDED,
    assignment_counts,
    env,
)

pytestmark = pytest.mark.integration


async def test_two_replicas_share_the_work_and_run_every_task_exactly_once(env, postgres_server):  # noqa: F811
    pg = env.settings.model_copy(update={"database_url": postgres_server.new_database()})
    options = dict(segments_per_chunk=1)
    async with (
        env.orchestrator(env.options(orchestrator_id="replica-a", **options), pg) as a,
        env.orchestrator(env.options(orchestrator_id="replica-b", **options), pg) as b,
    ):
        wa = await env.worker(a, "worker-a", slots=2)
        wb = await env.worker(b, "worker-b", slots=2)
        videos = [await env.uploaded_video() for _ in range(4)]
        # Jobs submitted through both replicas, concurrently (and twice: still one job each).
        await asyncio.gather(*(r.create(v) for v in videos for r in (a, b)))
        for video_id in videos:
            job = await a.wait_state(video_id, SUCCEEDED)
            assert all(t.state == dag.SUCCEEDED and t.attempts == 1 for t in job.tasks)
            await env.wait_video(video_id, VideoStatus.VIDEO_STATUS_READY)
        counts = assignment_counts(wa, wb)
        assert len(counts) == 4 * 6  # probe, audio, 3 chunks, poster per job
        assert set(counts.values()) == {1}, {k: v for k, v in counts.items() if v != 1}
        assert wa.assignments and wb.assignments  # both replicas handed out work
        listed = await a.jobs.ListTranscodeJobs(api.ListTranscodeJobsRequest(), metadata=SERVICE)
        assert sorted(j.name.removeprefix("transcodeJobs/") for j in listed.jobs) == sorted(videos)


async def test_a_replica_dies_and_the_other_carries_on(env, postgres_server):  # noqa: F811
    pg = env.settings.model_copy(update={"database_url": postgres_server.new_database()})
    options = dict(segments_per_chunk=1, lease_seconds=1.0)
    async with env.orchestrator(
        env.options(orchestrator_id=f"b-{uuid.uuid4().hex[:4]}", **options), pg
    ) as b:
        async with env.orchestrator(env.options(orchestrator_id="a", **options), pg) as a:
            video_id = await env.uploaded_video()
            lost = await env.worker(a, "worker-a", slots=3)
            lost.hold.add("chunk-0001")
            await a.create(video_id)
            await a.wait_all_but(video_id, "chunk-0001")
        await lost.disconnect()  # its replica is gone and it never comes back
        # Replica B's sweeper finds the lease A left behind expired and re-queues the task.
        survivor = await env.worker(b, "worker-b", slots=1)
        job = await b.wait_state(video_id, SUCCEEDED)
        assert "chunk-0001" in survivor.names()
        assert next(t for t in job.tasks if t.id == "chunk-0001").attempts == 2
        await env.wait_video(video_id, VideoStatus.VIDEO_STATUS_READY)
