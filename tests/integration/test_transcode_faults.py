"""Faults in the REAL transcode pipeline (real orchestrator, real worker processes, real
SeaweedFS): a worker SIGKILLed in the middle of a chunk, the orchestrator restarted mid-job,
a task whose process dies every time. Each ends in a definite state: READY with the same
output as a clean run, or FAILED with a reason after a bounded number of attempts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import pytest

from streamify.core.config import TranscodeSettings
from streamify.transcode.orchestrator import dag
from streamify.transcode.orchestrator.dispatch import Orchestrator
from streamify.v1.video_pb2 import VideoStatus
from tests.support import clips
from tests.support.transcode import (
    FAILED,
    SUCCEEDED,
    check_output,
    check_ready_video,
    describe,
    running_mesh,
    states,
)

pytestmark = pytest.mark.integration

DURATION = 6.0
FPS = 30


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """640x360 30 fps H.264 + AAC, 6 s: several chunk tasks of 2 one-second segments."""
    return clips.make_clip(
        tmp_path_factory.mktemp("src") / "clip.mp4",
        width=640,
        height=360,
        fps=FPS,
        duration=DURATION,
    )


def check(mesh, video_id, directory):
    return check_output(
        mesh,
        video_id,
        directory,
        duration=DURATION,
        fps=FPS,
        display=(640, 360),
        audio_duration=DURATION,
    )


@pytest.fixture(scope="module")
async def clean_run(source, seaweedfs, tmp_path_factory):
    """The structure of the output of a run without faults, to compare the faulted runs with."""
    root = tmp_path_factory.mktemp("clean")
    async with running_mesh(root, seaweedfs, workers=2) as mesh:
        video_id = await mesh.submit(source)
        job = await mesh.finished_job(video_id)
        assert job.state == SUCCEEDED, f"{describe(job)}\n{mesh.worker_logs()}"
        assert all(t.attempts == 1 for t in job.tasks), describe(job)
        return check(mesh, video_id, root / "out").structure()


async def test_a_worker_killed_in_the_middle_of_a_chunk_loses_it_to_the_other(
    source, clean_run, seaweedfs, tmp_path
):
    async with running_mesh(tmp_path / "mesh", seaweedfs, workers=2) as mesh:
        video_id = await mesh.submit(source)

        async def chunk_being_encoded():
            """(task, worker process) once a chunk's task process runs on a worker."""
            job = await mesh.job(video_id)
            for t in job.tasks:
                if t.kind == dag.VIDEO_CHUNK and t.state == dag.RUNNING:
                    worker = mesh.worker_by_id(t.worker)
                    if worker is not None and worker.children():
                        return t, worker
            return None

        task, victim = await mesh.until(chunk_being_encoded, "a chunk running in a worker process")
        victim.kill()  # SIGKILL to the worker's PID, mid-chunk
        assert victim.proc.returncode == -signal.SIGKILL

        job = await mesh.finished_job(video_id)
        assert job.state == SUCCEEDED, f"{describe(job)}\n{mesh.worker_logs()}"
        after = states(job)
        # The lost chunk ran again (on the survivor); nothing else ran twice.
        assert after[task.id] == (dag.SUCCEEDED, 2), describe(job)
        assert all(attempts == 1 for name, (_, attempts) in after.items() if name != task.id), (
            describe(job)
        )
        assert [w.alive for w in mesh.workers if w is not victim] == [True]

        output = check(mesh, video_id, tmp_path / "out")
        assert output.structure() == clean_run, "the same output as a run without the kill"
        video = await mesh.final_video(video_id)
        check_ready_video(video, output, video_id, duration=DURATION, fps=FPS)


async def test_an_orchestrator_restart_mid_job_resumes_without_rerunning_finished_tasks(
    source, clean_run, seaweedfs, tmp_path
):
    async with running_mesh(tmp_path / "mesh", seaweedfs, orchestrator=False, workers=0) as mesh:
        async with mesh.orchestrator():
            for _ in range(2):
                mesh.start_worker()
            video_id = await mesh.submit(source)

            async def mid_job():
                """Some chunks done, some not."""
                job = await mesh.job(video_id)
                chunks = [t.state for t in job.tasks if t.kind == dag.VIDEO_CHUNK]
                done = chunks.count(dag.SUCCEEDED)
                return job if 0 < done < len(chunks) else None

            await mesh.until(mid_job, "the job half done")
            before = states(await mesh.job(video_id))
        # The first orchestrator is gone; a new one on the same database and port takes over
        # and the worker processes reconnect to it.
        async with mesh.orchestrator():
            job = await mesh.finished_job(video_id)
            assert job.state == SUCCEEDED, f"{describe(job)}\n{mesh.worker_logs()}"
            after = states(job)
            finished_before = [n for n, (state, _) in before.items() if state == dag.SUCCEEDED]
            assert finished_before
            for name in finished_before:
                assert after[name] == before[name], f"{name} ran again: {describe(job)}"
            assert all(w.alive for w in mesh.workers)

            output = check(mesh, video_id, tmp_path / "out")
            assert output.structure() == clean_run, "the same output as a run without the restart"
            video = await mesh.final_video(video_id)
            check_ready_video(video, output, video_id, duration=DURATION, fps=FPS)


async def test_a_task_whose_process_always_dies_fails_the_job_after_bounded_attempts(
    source, seaweedfs, tmp_path
):
    """chunk-0001's task process is SIGKILLed (as the kernel's OOM killer would) each time
    it runs: with max_attempts=2 the job fails with the reason, the workers live on."""
    async with running_mesh(
        tmp_path / "mesh", seaweedfs, workers=2, transcode_max_attempts=2
    ) as mesh:
        video_id = await mesh.submit(source)
        killed: dict[int, int] = {}  # attempt -> task process PID

        async def crash_chunk_0001():
            job = await mesh.job(video_id)
            if job.state in (SUCCEEDED, FAILED):
                return job
            task = next((t for t in job.tasks if t.id == "chunk-0001"), None)
            if task is not None and task.state == dag.RUNNING and task.attempts not in killed:
                worker = mesh.worker_by_id(task.worker)
                children = worker.children() if worker is not None else []
                if len(children) == 1:  # slots=1: this is chunk-0001's process
                    os.kill(children[0], signal.SIGKILL)
                    killed[task.attempts] = children[0]
            return None

        job = await mesh.until(crash_chunk_0001, "the job ends")
        assert job.state == FAILED, f"{describe(job)}\n{mesh.worker_logs()}"
        assert sorted(killed) == [1, 2]
        task = next(t for t in job.tasks if t.id == "chunk-0001")
        assert (task.state, task.attempts) == (dag.FAILED, 2), describe(job)
        reason = (
            "chunk-0001 failed 2 times; last error: the encoder process died (signal 9, SIGKILL)"
        )
        assert job.failure_reason == reason
        assert all(w.alive for w in mesh.workers), "a task's crash never takes its worker down"

        video = await mesh.final_video(video_id)
        assert video.status == VideoStatus.VIDEO_STATUS_FAILED
        assert video.failure_reason == reason


async def test_the_dispatcher_stops_when_cancelled_just_after_a_wake_up():
    """app.run() stops by cancelling its background tasks and awaiting them. A wake-up of the
    dispatcher (a worker's stream ended, a result arrived, the sweeper ran) that lands just
    before that cancel must not make the dispatcher ignore it: the orchestrator would never
    finish stopping. (Seen for real: the e2e mesh's orchestrator hung in app.run's
    `await task` with the dispatcher "cancelling" at its `asyncio.wait_for(self._wake.wait())`.)"""
    orchestrator = Orchestrator(
        store=None,
        options=TranscodeSettings(dispatch_poll_seconds=3600),
        reporter=None,
        s3=None,
        media_bucket="media",
    )
    dispatcher = asyncio.create_task(orchestrator.run_dispatcher())
    await asyncio.sleep(0.05)  # idle: waiting for a wake-up
    orchestrator.wake()
    await asyncio.sleep(0)  # the wake-up is delivered...
    orchestrator.close()
    dispatcher.cancel()  # ...and app.run's shutdown cancels the dispatcher
    for _ in range(50):
        if dispatcher.done():
            break
        await asyncio.sleep(0.02)
    stuck = not dispatcher.done()
    if stuck:  # free it for the next tests: a second cancel lands while it waits
        dispatcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dispatcher
    assert not stuck, "the dispatcher swallowed its cancellation and kept running"
