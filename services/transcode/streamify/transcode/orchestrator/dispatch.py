"""The orchestrator: pushes tasks to connected workers, applies their results to the durable
DAG, publishes playlists (progressively, then final), and sweeps what time leaves behind.

Nothing here is the source of truth: the database is. The in-memory state of a replica is
only which worker streams it serves and which leases it handed to them, so a replica can die
at any moment: its workers reconnect elsewhere (their results are accepted by lease id, and
their heartbeats adopt the leases they still hold), and the leases nobody renews expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any

from streamify.core import names
from streamify.core.aio import wait_for_event
from streamify.core.clock import timestamp_of
from streamify.core.config import TranscodeSettings
from streamify.core.db import run_in_thread
from streamify.transcode.orchestrator import dag, task_urls
from streamify.transcode.orchestrator.assembly import (
    PLAYLIST_CONTENT_TYPE,
    Assembled,
    AssemblyError,
    PlaylistFile,
    assemble,
    final_playlists,
    processing_result,
)
from streamify.transcode.orchestrator.reporter import CANCELLED_REASON, Reporter
from streamify.transcode.orchestrator.store import Claimed, Outcome, Snapshot, Store, TaskKey
from streamify.v1 import worker_service_pb2 as wapi

log = logging.getLogger(__name__)

MAX_SLOTS = 64


def default_orchestrator_id() -> str:
    """host-pid-random: unique per process, readable in leases and logs."""
    host = socket.gethostname().split(".")[0][:40] or "orchestrator"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(eq=False)
class WorkerSession:
    """One open Connect stream of one worker, on this replica."""

    worker_id: str
    slots: int
    id: str = field(default_factory=lambda: secrets.token_hex(6))
    held: dict[tuple[str, str], TaskKey] = field(default_factory=dict)
    outbox: asyncio.Queue[wapi.ConnectResponse | None] = field(default_factory=asyncio.Queue)
    closed: bool = False

    @property
    def free(self) -> int:
        return 0 if self.closed else max(0, self.slots - len(self.held))

    def send(self, message: wapi.ConnectResponse | None) -> None:
        self.outbox.put_nowait(message)

    def drop(self, key: TaskKey, reason: str | None = None) -> None:
        """Forget a task (and tell the worker to stop it when `reason` is given)."""
        if self.held.get((key.job_id, key.name)) == key:
            del self.held[(key.job_id, key.name)]
            if reason is not None and not self.closed:
                self.send(
                    wapi.ConnectResponse(
                        cancellation=wapi.TaskCancellation(
                            task_id=names.task(key.job_id, key.name), reason=reason
                        )
                    )
                )


class Orchestrator:
    def __init__(
        self,
        *,
        store: Store,
        options: TranscodeSettings,
        reporter: Reporter,
        s3: Any,
        media_bucket: str,
    ) -> None:
        self._store = store
        self.options = options
        self._id = options.orchestrator_id or default_orchestrator_id()
        self.reporter = reporter
        self._s3 = s3
        self._media_bucket = media_bucket
        self._sessions: dict[str, WorkerSession] = {}
        self._wake = asyncio.Event()
        self._job_locks: dict[str, asyncio.Lock] = {}
        self._spawned: set[asyncio.Task[Any]] = set()
        self.closing = False

    @property
    def id(self) -> str:
        return self._id

    # --- background helpers ---------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
        task.add_done_callback(_log_failure)

    def _lock(self, job_id: str) -> asyncio.Lock:
        lock = self._job_locks.get(job_id)
        if lock is None:
            lock = self._job_locks[job_id] = asyncio.Lock()
        return lock

    def close(self) -> None:
        """Stop serving workers WITHOUT giving their leases up: the streams end cleanly, the
        workers reconnect (to another replica) and carry on; their results are accepted there
        by lease id."""
        self.closing = True
        for session in list(self._sessions.values()):
            session.closed = True
            session.send(None)

    async def aclose(self) -> None:
        self.close()
        for task in list(self._spawned):
            task.cancel()
        for task in list(self._spawned):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- jobs (job_control.JobControl) ----------------------------------------------------

    async def get_job(self, job_id: str) -> Snapshot | None:
        return await run_in_thread(self._store.get, job_id)

    async def list_jobs(
        self, *, state: int, owner: str | None, limit: int, after: tuple[int, str] | None
    ) -> list[Snapshot]:
        return await run_in_thread(
            lambda: self._store.list_jobs(state=state, owner=owner, limit=limit, after=after)
        )

    async def create_job(
        self, video_id: str, owner: str, bucket: str, key: str, size: int
    ) -> Snapshot:
        snapshot, created = await run_in_thread(
            self._store.create_job, video_id, owner, bucket, key, size
        )
        if created:
            log.info("job %s created (source s3://%s/%s)", video_id, bucket, key)
            await self.reporter.started(video_id, snapshot.stage(), 0, snapshot.job.total_tasks)
            self.wake()
        return snapshot

    async def cancel_job(self, job_id: str, request_id: str) -> Snapshot:
        snapshot = await run_in_thread(self._store.cancel_job, job_id, request_id, CANCELLED_REASON)
        self.cancel_local(job_id, "the job was cancelled")
        if snapshot.job.notified_state != snapshot.job.state:
            await self.reporter.final(job_id)
        after = await run_in_thread(self._store.get, job_id)
        if after is None:  # deleted meanwhile (Store.delete_job): gone, like a job never created
            raise KeyError(job_id)
        return after

    async def forget_job(self, job_id: str) -> None:
        """For a deleted video: the job's tasks stop (at once on this replica's workers; on
        others' when their leases are not renewed) and the job and its tasks are gone."""
        self.cancel_local(job_id, "the video was deleted")
        await run_in_thread(self._store.delete_job, job_id)

    async def retry_job(self, job_id: str, request_id: str) -> Snapshot:
        before = await run_in_thread(self._store.get, job_id)
        snapshot = await run_in_thread(self._store.retry_job, job_id, request_id)
        if before is not None and before.job.state in dag.JOB_TERMINAL:
            await self.reporter.started(
                job_id, snapshot.stage(), snapshot.job.completed_tasks, snapshot.job.total_tasks
            )
            self.wake()
            self._spawn(self.publish(job_id), f"publish-{job_id}")
            self._spawn(self.finalize(job_id), f"finalize-{job_id}")
        return snapshot

    def cancel_local(self, job_id: str, reason: str) -> None:
        """TaskCancellation for the job's tasks held by workers on this replica (workers on
        other replicas learn it at their next heartbeat: their lease is gone)."""
        for session in list(self._sessions.values()):
            for (j, _name), key in list(session.held.items()):
                if j == job_id:
                    session.drop(key, reason)
        self.wake()

    # --- workers -------------------------------------------------------------------------------

    def welcome(self) -> wapi.ConnectResponse:
        welcome = wapi.WorkerWelcome(orchestrator_id=self.id)
        welcome.heartbeat_interval.FromNanoseconds(
            int(self.options.heartbeat_interval_seconds * 1e9)
        )
        return wapi.ConnectResponse(welcome=welcome)

    def attach(self, session: WorkerSession) -> None:
        session.slots = max(1, min(session.slots, MAX_SLOTS))
        self._sessions[session.id] = session
        log.info("worker %s connected (%s slots)", session.worker_id, session.slots)
        self.wake()

    async def detach(self, session: WorkerSession, *, release: bool) -> None:
        """The stream ended. `release`: the worker is gone, its tasks go back to PENDING (an
        attempt is counted, so a task that kills its worker fails after max_attempts)."""
        session.closed = True
        self._sessions.pop(session.id, None)
        held = list(session.held.values())
        session.held.clear()
        log.info(
            "worker %s disconnected (%s tasks held, %s)",
            session.worker_id,
            len(held),
            "released" if release else "kept for its reconnect",
        )
        if release:
            error = dag.lost_worker_error(session.worker_id, "disconnected")
            for key in held:
                outcome = await run_in_thread(self._store.fail, key, error, True)
                await self._after(outcome)
        self.wake()

    async def on_heartbeat(self, session: WorkerSession, hb: wapi.WorkerHeartbeat) -> None:
        await self._adopt(session, hb.leases)
        await self.refresh_leases(session)

    async def refresh_leases(self, session: WorkerSession) -> None:
        held = set(session.held.values())
        if not held:
            return
        kept = await run_in_thread(self._store.extend, held)
        for key in held - kept:
            session.drop(key, "the task's lease was given up (cancelled, failed or expired)")
            self.wake()

    async def _adopt(self, session: WorkerSession, leases: Iterable[wapi.HeldLease]) -> None:
        """Leases this worker holds in the database but this stream does not know (it
        reconnected after its replica went away) become this stream's: only those it names
        with their lease id, which only the stream they were assigned on was told, so a stream
        that claims another worker's id cannot take over (and then release) its tasks."""
        known = {names.task(j, n) for (j, n) in session.held}
        unknown = [(held.task_id, held.lease_id) for held in leases if held.task_id not in known]
        if not unknown:
            return
        keys = await run_in_thread(self._store.leases_of, session.worker_id, unknown)
        for key in keys:
            session.held[(key.job_id, key.name)] = key

    def _key(self, session: WorkerSession, task_id: str, lease_id: str) -> TaskKey | None:
        parsed = names.parse_task(task_id)
        if parsed is None:
            log.warning("worker %s sent an unknown task id %r", session.worker_id, task_id)
            return None
        return TaskKey(parsed[0], parsed[1], lease_id)

    async def on_progress(self, session: WorkerSession, msg: wapi.TaskProgress) -> None:
        key = self._key(session, msg.task_id, msg.lease_id)
        if key is None:
            return
        if await run_in_thread(self._store.progress, key, msg.fraction):
            session.held.setdefault((key.job_id, key.name), key)
        elif session.held.get((key.job_id, key.name)) == key:
            session.drop(key, "the task's lease was given up (cancelled, failed or expired)")
            self.wake()

    async def on_result(self, session: WorkerSession, msg: wapi.TaskResult) -> None:
        key = self._key(session, msg.task_id, msg.lease_id)
        if key is None:
            return
        session.drop(key)
        self.wake()
        outcome = await run_in_thread(self._store.complete, key, msg)
        if not outcome.applied:
            log.info("result for %s ignored: lease %s is not held", msg.task_id, msg.lease_id)
            return
        await self._after(outcome)

    async def on_failure(self, session: WorkerSession, msg: wapi.TaskFailure) -> None:
        key = self._key(session, msg.task_id, msg.lease_id)
        if key is None:
            return
        session.drop(key)
        self.wake()
        outcome = await run_in_thread(self._store.fail, key, msg.error, msg.retryable)
        if not outcome.applied:
            log.info("failure of %s ignored: lease %s is not held", msg.task_id, msg.lease_id)
            return
        log.info(
            "task %s failed (%s): %s",
            msg.task_id,
            "retryable" if msg.retryable else "final",
            msg.error,
        )
        await self._after(outcome)

    async def _after(self, outcome: Outcome) -> None:
        """Effects of a change of the DAG: reports, cancellations, publication, assembly."""
        job_id = outcome.job_id
        if not outcome.applied:
            return
        if outcome.job_failed:
            log.info("job %s failed: %s", job_id, outcome.job_failed)
            self.cancel_local(job_id, "the job failed")
            await self.reporter.final(job_id)
            return
        if outcome.requeued or outcome.planned:
            self.wake()
        self.reporter.progress(job_id, outcome.completed, outcome.total, outcome.stage)
        if outcome.published_candidate:
            self._spawn(self.publish(job_id), f"publish-{job_id}")
        if outcome.assemble_ready:
            self._spawn(self.finalize(job_id), f"finalize-{job_id}")

    # --- dispatch ------------------------------------------------------------------------------

    async def run_dispatcher(self) -> None:
        """Pushes runnable tasks to workers with free slots. Woken when a task becomes runnable
        or a slot frees on this replica; also every dispatch_poll_seconds for tasks that other
        replicas made runnable."""
        while True:
            await wait_for_event(self._wake, self.options.dispatch_poll_seconds)
            self._wake.clear()
            try:
                while not self.closing and await self.dispatch_once():
                    pass
            except Exception:
                log.exception("dispatch round failed")
                await asyncio.sleep(min(1.0, self.options.dispatch_poll_seconds))

    async def dispatch_once(self) -> int:
        """One claim per worker with free slots; the number of tasks assigned."""
        assigned = 0
        started: list[str] = []
        sessions = sorted(self._sessions.values(), key=lambda s: -s.free)
        for session in sessions:
            if session.free <= 0:
                continue
            claimed = await run_in_thread(self._store.claim, session.worker_id, session.free)
            for c in claimed:
                key = TaskKey(c.job_id, c.name, c.lease_id)
                if session.closed:  # the stream ended meanwhile: give the task straight back
                    await run_in_thread(self._store.unclaim, key)
                    self.wake()
                    continue
                try:
                    assignment = self._assignment(c)
                except Exception as exc:  # noqa: BLE001 - e.g. the spec cannot be signed
                    outcome = await run_in_thread(
                        self._store.fail, key, f"cannot assign: {exc}", True
                    )
                    await self._after(outcome)
                    continue
                session.held[(c.job_id, c.name)] = key
                session.send(wapi.ConnectResponse(assignment=assignment))
                assigned += 1
                if c.kind == dag.PROBE:
                    started.append(c.job_id)
        if started:
            # A job leaving QUEUED has no plan yet: its one task is the probe.
            stage = dag.stage(dag.JOB_RUNNING, plan_exists=False, states={})
            for job_id in await run_in_thread(self._store.mark_running, started):
                self.reporter.progress(job_id, 0, 1, stage, force=True)
        return assigned

    def _assignment(self, c: Claimed) -> wapi.TaskAssignment:
        assignment: wapi.TaskAssignment = wapi.TaskAssignment.FromString(
            c.spec
        )  # Message is untyped
        assignment.task_id = names.task(c.job_id, c.name)
        assignment.lease_id = c.lease_id
        assignment.lease_expire_time.CopyFrom(timestamp_of(c.lease_expire_us))
        assignment.attempt = c.attempt
        which = assignment.WhichOneof("spec")
        if which is None:
            raise ValueError(f"task {c.name} has no spec")
        spec = getattr(assignment, which)
        ttl = self.options.task_url_ttl_seconds
        task_urls.sign_source(self._s3, spec.source, ttl)
        if "output" in spec.DESCRIPTOR.fields_by_name:
            task_urls.sign_output(self._s3, spec.output, ttl, self.options.task_output_max_bytes)
        return assignment

    # --- publication -----------------------------------------------------------------------

    async def _write(self, files: list[PlaylistFile]) -> None:
        def put_all() -> None:
            for f in files:
                self._s3.put_object(
                    Bucket=self._media_bucket,
                    Key=f.key,
                    Body=f.body.encode(),
                    ContentType=PLAYLIST_CONTENT_TYPE,
                    CacheControl=f.cache_control,
                )

        await run_in_thread(put_all)

    async def publish(self, job_id: str) -> None:
        """EVENT playlists for the leading run of finished chunks, once chunk 0 and the audio
        are done, and again whenever the run grows (progressive playback); not once the
        assemble step is ready, whose final playlists come next (what runs when: assembly)."""
        async with self._lock(job_id):
            snapshot = await run_in_thread(self._store.get, job_id)
            if snapshot is None or snapshot.job.state != dag.JOB_RUNNING:
                return
            plan = snapshot.plan
            run = snapshot.playable_run()
            if plan is None or not dag.should_publish(run, snapshot.job.published_run):
                return
            if dag.assemble_ready(snapshot.states()):
                return
            try:
                assembled = assemble(
                    job_id,
                    plan,
                    snapshot.chunk_results(),
                    snapshot.audio_result(),
                    run,
                    final=False,
                )
            except AssemblyError as exc:
                if await run_in_thread(self._store.fail_job, job_id, str(exc)):
                    self.cancel_local(job_id, "the job failed")
                    await self.reporter.final(job_id)
                return
            claimed, first = await run_in_thread(self._store.claim_publish, job_id, run)
            if not claimed:
                return
            await self._write(assembled.files)
            log.info(
                "job %s: %s of %s chunks playable%s",
                job_id,
                run,
                len(plan.chunks),
                " (first playable)" if first else "",
            )
            after = await run_in_thread(self._store.get, job_id)
            if after is not None and after.job.published_run >= dag.FINAL_PUBLISHED:
                # Another replica claimed the assemble task after our claim_publish, and may
                # have written the final playlists before ours: they must be the last word.
                await self._rewrite_final(after)
                return
            self.reporter.progress(
                job_id,
                snapshot.job.completed_tasks,
                snapshot.job.total_tasks,
                snapshot.stage(),
                result=processing_result(job_id, plan, assembled),
            )

    @staticmethod
    def _final(snapshot: Snapshot) -> Assembled:
        plan = snapshot.plan
        assert plan is not None
        return final_playlists(
            snapshot.job.id, plan, snapshot.chunk_results(), snapshot.audio_result()
        )

    async def _rewrite_final(self, snapshot: Snapshot) -> None:
        if snapshot.job.state not in (dag.JOB_RUNNING, dag.JOB_SUCCEEDED):
            return  # the assembly failed (or the job was cancelled): nothing final to keep
        try:
            assembled = self._final(snapshot)
        except (AssemblyError, ValueError) as exc:  # the finalizing replica fails the job
            log.info("job %s: final playlists not rewritten: %s", snapshot.job.id, exc)
            return
        await self._write(assembled.files)

    async def finalize(self, job_id: str) -> None:
        """The assemble task: the final (VOD) playlists, then the job SUCCEEDED, video READY."""
        async with self._lock(job_id):
            key = await run_in_thread(self._store.claim_assemble, job_id, self.id)
            if key is None:
                return
            snapshot = await run_in_thread(self._store.get, job_id)
            assert snapshot is not None and snapshot.plan is not None
            try:
                assembled = self._final(snapshot)
            except (AssemblyError, ValueError) as exc:
                outcome = await run_in_thread(self._store.fail, key, str(exc), False)
                await self._after(outcome)
                return
            try:
                await self._write(assembled.files)
            except Exception as exc:  # noqa: BLE001 - storage trouble: try again
                log.warning("job %s: writing playlists failed: %s", job_id, exc)
                outcome = await run_in_thread(
                    self._store.fail, key, f"writing the playlists failed: {exc}", True
                )
                await self._after(outcome)
                return
            result = processing_result(job_id, snapshot.plan, assembled, snapshot.poster_key())
            if await run_in_thread(self._store.finish_assemble, key, result):
                log.info("job %s succeeded", job_id)
                await self.reporter.final(job_id)

    # --- the sweeper ---------------------------------------------------------------------------

    async def run_sweeper(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep failed")
            await asyncio.sleep(self.options.sweep_interval_seconds)

    async def sweep(self) -> None:
        """Expired leases back to PENDING (or the job fails after max attempts), overdue jobs
        FAILED, assembly and publication that were interrupted, final states not reported."""
        for key in await run_in_thread(self._store.expired_leases):
            outcome = await run_in_thread(
                self._store.fail, key, "the worker stopped answering (its lease expired)", True
            )
            if outcome.applied:
                log.info("lease of %s/%s expired", key.job_id, key.name)
                self._drop_everywhere(key)
                await self._after(outcome)
        limit = self.options.job_deadline_seconds
        for job_id in await run_in_thread(self._store.overdue_jobs):
            reason = f"transcoding took longer than the limit of {_human(limit)}"
            if await run_in_thread(self._store.fail_job, job_id, reason):
                self.cancel_local(job_id, "the job ran out of time")
                await self.reporter.final(job_id)
        for job_id in await run_in_thread(self._store.jobs_ready_to_assemble):
            await self.finalize(job_id)
        for job_id in await run_in_thread(self._store.jobs_to_publish):
            await self.publish(job_id)
        for job_id in await run_in_thread(self._store.unreported_jobs):
            await self.reporter.final(job_id)
        self.wake()

    def _drop_everywhere(self, key: TaskKey) -> None:
        for session in list(self._sessions.values()):
            session.drop(key, "the task's lease expired")


def _human(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background step %s failed", task.get_name(), exc_info=task.exception())
