"""What the Metadata service is told at the end of a job, from the stored job alone: READY
carries the result the assemble task stored (nothing is assembled again to report it), and the
stage comes from dag.stage like every other progress report."""

from __future__ import annotations

import pytest

from streamify.transcode.orchestrator import dag
from streamify.transcode.orchestrator.assembly import final_playlists, processing_result
from streamify.transcode.orchestrator.models import JobRow, TaskRow
from streamify.transcode.orchestrator.reporter import final_request
from streamify.transcode.orchestrator.store import Snapshot
from streamify.v1 import metadata_service_pb2 as meta
from streamify.v1 import worker_service_pb2 as wapi
from streamify.v1.video_pb2 import Rendition, VideoStatus
from tests.unit.test_orchestrator_assembly import audio_of, chunks_of, plan_of

pytestmark = pytest.mark.unit


def job(state: int, plan: dag.Plan | None, total: int = 7) -> JobRow:
    return JobRow(
        id="v1",
        state=state,
        failure_reason="",
        plan=plan.to_json() if plan else "",
        total_tasks=total,
    )


def task(name: str, kind: int, state: int, result: bytes = b"", chunk_index: int = 0) -> TaskRow:
    return TaskRow(name=name, kind=kind, state=state, result=result, chunk_index=chunk_index)


def test_ready_carries_the_stored_result_without_assembling_again():
    plan = plan_of()
    stored = meta.ProcessingResult(
        renditions=[Rendition(id="360p", width=640, height=360, bandwidth=1000)],
        duration=dag.seconds(plan.duration),
        manifest_path="videos/v1/master.m3u8",
        poster_path="videos/v1/poster.jpg",
    )
    # No chunk or audio results: assembling would fail, so READY proves nothing was assembled.
    assemble = task(dag.ASSEMBLE_TASK, dag.ASSEMBLE, dag.SUCCEEDED, stored.SerializeToString())
    request = final_request(Snapshot(job(dag.JOB_SUCCEEDED, plan), [assemble]))
    assert request.status == VideoStatus.VIDEO_STATUS_READY
    assert request.result == stored
    assert (request.progress.completed_tasks, request.progress.total_tasks) == (7, 7)
    assert request.progress.stage == "done"


def test_a_job_that_succeeded_without_a_stored_result_is_assembled_again():
    plan = plan_of()
    chunks, audio = chunks_of(plan), audio_of(plan)
    tasks = [
        task(
            dag.chunk_name(i),
            dag.VIDEO_CHUNK,
            dag.SUCCEEDED,
            wapi.TaskResult(video_chunk=c).SerializeToString(),
            chunk_index=i,
        )
        for i, c in chunks.items()
    ]
    tasks.append(
        task(
            dag.AUDIO_TASK,
            dag.AUDIO,
            dag.SUCCEEDED,
            wapi.TaskResult(audio=audio).SerializeToString(),
        )
    )
    tasks.append(task(dag.ASSEMBLE_TASK, dag.ASSEMBLE, dag.SUCCEEDED))
    request = final_request(Snapshot(job(dag.JOB_SUCCEEDED, plan), tasks))
    assert request.status == VideoStatus.VIDEO_STATUS_READY
    assert request.result == processing_result(
        "v1", plan, final_playlists("v1", plan, chunks, audio)
    )


@pytest.mark.parametrize(
    ("state", "planned", "states", "stage"),
    [
        (dag.JOB_QUEUED, False, {"probe": dag.PENDING}, "queued"),
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
        (dag.JOB_SUCCEEDED, True, {"probe": dag.SUCCEEDED}, "done"),
    ],
)
def test_a_snapshot_s_stage_is_dag_stage(state, planned, states, stage):
    kinds = {"probe": dag.PROBE, "assemble": dag.ASSEMBLE}
    tasks = [task(n, kinds.get(n, dag.VIDEO_CHUNK), s) for n, s in states.items()]
    snapshot = Snapshot(job(state, plan_of() if planned else None), tasks)
    assert snapshot.stage() == dag.stage(state, planned, states) == stage
