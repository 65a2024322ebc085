"""The orchestrator's durable state: jobs and tasks in SQL (SQLite embedded, PostgreSQL at
scale; the same code). Every method is synchronous and runs in a worker thread.

Concurrency, for several orchestrator replicas on one database:
* a task is claimed by an UPDATE of PENDING rows picked with `FOR UPDATE SKIP LOCKED` on
  PostgreSQL (replicas skip each other's rows); on SQLite the single writer makes the
  UPDATE ... RETURNING atomic by itself;
* every result, failure, progress and heartbeat names the task's lease_id and changes a row
  only if that lease still holds it, so a late answer from a worker that lost its lease is
  ignored, whichever replica it reaches;
* job-level changes start by UPDATE-ing the job row (which locks it on PostgreSQL and takes
  the write lock on SQLite) before reading anything, so read-then-write is never racy; the
  lock order is always job, then tasks.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from streamify.core import names, storage_keys
from streamify.core.clock import now_us
from streamify.core.config import TranscodeSettings
from streamify.core.db import rowcount
from streamify.transcode.media.errors import MediaError
from streamify.transcode.orchestrator import dag
from streamify.transcode.orchestrator.dag import Plan
from streamify.transcode.orchestrator.models import JobRow, TaskRow
from streamify.v1 import metadata_service_pb2 as meta
from streamify.v1 import transcode_service_pb2 as tapi
from streamify.v1 import worker_service_pb2 as wapi

log = logging.getLogger(__name__)
T = TypeVar("T")
_TX_ATTEMPTS = 6


def _us(seconds: float) -> int:
    return int(seconds * 1_000_000)


def _result(task: TaskRow) -> wapi.TaskResult:
    """The stored TaskResult of a finished task."""
    result: wapi.TaskResult = wapi.TaskResult.FromString(task.result)  # Message is untyped
    return result


class Conflict(Exception):
    """The job is not in a state that allows the operation (message for a person)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message, self.reason = message, reason


@dataclass(frozen=True)
class Claimed:
    job_id: str
    name: str
    kind: int
    attempt: int
    lease_id: str
    lease_expire_us: int
    spec: bytes


@dataclass(frozen=True)
class TaskKey:
    job_id: str
    name: str
    lease_id: str


@dataclass
class Outcome:
    """What a result, failure or lost lease changed."""

    job_id: str
    applied: bool = False  # False: the lease was not (or no longer) held; nothing changed
    requeued: bool = False  # the task is PENDING again
    job_failed: str = ""  # the job failed with this reason
    planned: bool = False  # a probe result created the plan's tasks
    published_candidate: bool = False  # a chunk or the audio finished: playlists may grow
    assemble_ready: bool = False  # every task but assemble is done (set by results only)
    completed: int = 0
    total: int = 0
    stage: str = ""  # dag.stage of the job after the change


@dataclass
class Snapshot:
    """A job with its tasks, for the API, the publisher and the reporter."""

    job: JobRow
    tasks: list[TaskRow] = field(default_factory=list)

    @property
    def plan(self) -> Plan | None:
        return Plan.from_json(self.job.plan) if self.job.plan else None

    def states(self) -> dict[str, int]:
        return {t.name: t.state for t in self.tasks}

    def task(self, name: str) -> TaskRow | None:
        return next((t for t in self.tasks if t.name == name), None)

    def chunk_results(self) -> dict[int, wapi.ChunkResult]:
        return {
            t.chunk_index: _result(t).video_chunk
            for t in self.tasks
            if t.kind == dag.VIDEO_CHUNK and t.state == dag.SUCCEEDED and t.result
        }

    def audio_result(self) -> wapi.AudioResult | None:
        t = self.task(dag.AUDIO_TASK)
        if t is None or t.state != dag.SUCCEEDED or not t.result:
            return None
        return _result(t).audio

    def poster_key(self) -> str:
        t = self.task(dag.POSTER_TASK)
        if t is None or t.state != dag.SUCCEEDED or not t.result:
            return ""
        return _result(t).poster.key

    def final_result(self) -> meta.ProcessingResult | None:
        """What the assemble task made of the final playlists (stored when it succeeded;
        None for a job that succeeded before versions that store it)."""
        t = self.task(dag.ASSEMBLE_TASK)
        if t is None or t.state != dag.SUCCEEDED or not t.result:
            return None
        result: meta.ProcessingResult = meta.ProcessingResult.FromString(t.result)
        return result

    def playable_run(self) -> int:
        plan = self.plan
        if plan is None:
            return 0
        return dag.playable_run(
            self.chunk_results().keys(),
            len(plan.chunks),
            plan.has_audio,
            self.audio_result() is not None,
        )

    def stage(self) -> str:
        return dag.stage(self.job.state, bool(self.job.plan), self.states())


class Store:
    def __init__(
        self, sessions: sessionmaker[Session], options: TranscodeSettings, media_bucket: str
    ) -> None:
        self._sessions = sessions
        self._options = options
        self._media_bucket = media_bucket
        bind = sessions.kw.get("bind")
        self._skip_locked = bind is not None and bind.dialect.name == "postgresql"

    # --- plumbing ----------------------------------------------------------------------------

    def _tx(self, fn: Callable[[Session], T]) -> T:
        """Runs fn in one transaction; retried on deadlocks / lock timeouts / serialization."""
        for attempt in range(1, _TX_ATTEMPTS + 1):
            try:
                with self._sessions() as session, session.begin():
                    return fn(session)
            except OperationalError as exc:
                if attempt == _TX_ATTEMPTS:
                    raise
                log.info("transaction retried (%s): %s", attempt, str(exc).splitlines()[0])
                time.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    @staticmethod
    def _lock_job(session: Session, job_id: str, now: int) -> JobRow | None:
        """UPDATE first (row lock on PostgreSQL, write lock on SQLite), then read."""
        result = session.execute(
            update(JobRow).where(JobRow.id == job_id).values(update_time_us=now)
        )
        if rowcount(result) == 0:
            return None
        return session.execute(
            select(JobRow).where(JobRow.id == job_id).execution_options(populate_existing=True)
        ).scalar_one()

    @staticmethod
    def _tasks(session: Session, job_id: str) -> list[TaskRow]:
        return list(
            session.scalars(
                select(TaskRow)
                .where(TaskRow.job_id == job_id)
                .order_by(TaskRow.id)
                .execution_options(populate_existing=True)
            )
        )

    @staticmethod
    def _held(session: Session, key: TaskKey) -> TaskRow | None:
        task = session.execute(
            select(TaskRow)
            .where(TaskRow.job_id == key.job_id, TaskRow.name == key.name)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if task is None or task.state != dag.RUNNING or task.lease_id != key.lease_id:
            return None
        return task

    def _count(self, session: Session, job: JobRow) -> tuple[int, int]:
        done = (
            session.scalar(
                select(func.count())
                .select_from(TaskRow)
                .where(TaskRow.job_id == job.id, TaskRow.state == dag.SUCCEEDED)
            )
            or 0
        )
        job.completed_tasks = done
        return done, job.total_tasks

    def _end_job(self, session: Session, job: JobRow, state: int, reason: str, now: int) -> None:
        """FAILED or CANCELLED: the reason is kept, unfinished tasks are CANCELLED (their
        leases cleared, so the workers holding them get a TaskCancellation)."""
        job.state = state
        job.failure_reason = reason[:2000]
        job.end_time_us = now
        session.execute(
            update(TaskRow)
            .where(TaskRow.job_id == job.id, TaskRow.state.in_((dag.PENDING, dag.RUNNING)))
            .values(state=dag.CANCELLED, lease_id="", lease_expire_us=0, update_time_us=now)
        )

    # --- jobs --------------------------------------------------------------------------------

    def create_job(
        self, job_id: str, owner: str, bucket: str, key: str, size: int
    ) -> tuple[Snapshot, bool]:
        """The job for a video and whether this call created it (idempotent per video)."""

        def create(session: Session) -> None:
            now = now_us()
            session.add(
                JobRow(
                    id=job_id,
                    owner=owner,
                    state=dag.JOB_QUEUED,
                    failure_reason="",
                    source_bucket=bucket,
                    source_key=key,
                    source_size=size,
                    plan="",
                    total_tasks=1,
                    completed_tasks=0,
                    published_run=0,
                    first_playable_us=0,
                    notified_state=0,
                    retry_request_id="",
                    cancel_request_id="",
                    create_time_us=now,
                    update_time_us=now,
                    end_time_us=0,
                    deadline_us=now + _us(self._options.job_deadline_seconds),
                )
            )
            session.flush()
            probe = dag.probe_task(wapi.SourceRef(bucket=bucket, key=key, size_bytes=size))
            session.add(self._task_row(job_id, probe, now))

        try:
            self._tx(create)
            created = True
        except IntegrityError:
            created = False
        snapshot = self.get(job_id)
        assert snapshot is not None
        return snapshot, created

    @staticmethod
    def _task_row(job_id: str, planned: dag.PlannedTask, now: int) -> TaskRow:
        return TaskRow(
            job_id=job_id,
            name=planned.name,
            kind=planned.kind,
            chunk_index=planned.chunk_index,
            state=dag.PENDING,
            attempts=0,
            worker_id="",
            lease_id="",
            lease_expire_us=0,
            progress=0.0,
            last_error="",
            spec=planned.spec.SerializeToString(),
            result=b"",
            create_time_us=now,
            update_time_us=now,
        )

    def get(self, job_id: str) -> Snapshot | None:
        with self._sessions() as session:
            job = session.get(JobRow, job_id)
            if job is None:
                return None
            return Snapshot(job, self._tasks(session, job_id))

    def list_jobs(
        self, *, state: int, owner: str | None, limit: int, after: tuple[int, str] | None
    ) -> list[Snapshot]:
        """Newest first; `after` = (create_time_us, id) of the last job of the previous page."""
        query = select(JobRow)
        if state:
            query = query.where(JobRow.state == state)
        if owner is not None:
            query = query.where(JobRow.owner == owner)
        if after is not None:
            t, i = after
            query = query.where(
                or_(JobRow.create_time_us < t, (JobRow.create_time_us == t) & (JobRow.id < i))
            )
        query = query.order_by(JobRow.create_time_us.desc(), JobRow.id.desc()).limit(limit)
        with self._sessions() as session:
            jobs = list(session.scalars(query))
            if not jobs:
                return []
            tasks = list(
                session.scalars(
                    select(TaskRow)
                    .where(TaskRow.job_id.in_([j.id for j in jobs]))
                    .order_by(TaskRow.id)
                )
            )
        by_job: dict[str, list[TaskRow]] = {}
        for task in tasks:
            by_job.setdefault(task.job_id, []).append(task)
        return [Snapshot(j, by_job.get(j.id, [])) for j in jobs]

    def cancel_job(self, job_id: str, request_id: str, reason: str) -> Snapshot:
        def cancel(session: Session) -> None:
            now = now_us()
            job = self._lock_job(session, job_id, now)
            if job is None:
                raise KeyError(job_id)
            if job.state == dag.JOB_CANCELLED:
                return
            if job.state not in dag.JOB_ACTIVE:
                label = tapi.JobState.Name(tapi.JobState.ValueType(job.state)).removeprefix(
                    "JOB_STATE_"
                )
                raise Conflict(
                    f"transcodeJobs/{job_id} is {label} and cannot be cancelled", "JOB_NOT_RUNNING"
                )
            self._end_job(session, job, dag.JOB_CANCELLED, reason, now)
            job.cancel_request_id = request_id

        self._tx(cancel)
        return self.get(job_id)  # type: ignore[return-value]

    def retry_job(self, job_id: str, request_id: str) -> Snapshot:
        def retry(session: Session) -> None:
            now = now_us()
            job = self._lock_job(session, job_id, now)
            if job is None:
                raise KeyError(job_id)
            if job.state in dag.JOB_ACTIVE and request_id and job.retry_request_id == request_id:
                return  # a repeated call of the retry that started this run
            if job.state not in (dag.JOB_FAILED, dag.JOB_CANCELLED):
                label = tapi.JobState.Name(tapi.JobState.ValueType(job.state)).removeprefix(
                    "JOB_STATE_"
                )
                raise Conflict(
                    f"transcodeJobs/{job_id} is {label}; only FAILED or CANCELLED "
                    "jobs can be retried",
                    "JOB_NOT_RETRYABLE",
                )
            session.execute(
                update(TaskRow)
                .where(
                    TaskRow.job_id == job_id,
                    TaskRow.state.in_((dag.FAILED, dag.CANCELLED, dag.PENDING)),
                )
                .values(
                    state=dag.PENDING,
                    attempts=0,
                    worker_id="",
                    lease_id="",
                    lease_expire_us=0,
                    progress=0.0,
                    update_time_us=now,
                )
            )
            job.state = dag.JOB_RUNNING if job.plan else dag.JOB_QUEUED
            job.failure_reason = ""
            job.end_time_us = 0
            job.notified_state = 0
            job.deadline_us = now + _us(self._options.job_deadline_seconds)
            job.retry_request_id = request_id
            if job.published_run >= dag.FINAL_PUBLISHED:
                job.published_run = 0
            self._count(session, job)

        self._tx(retry)
        return self.get(job_id)  # type: ignore[return-value]

    def fail_job(self, job_id: str, reason: str) -> bool:
        """Fails an active job (deadline, assembly error); False if it was not active."""

        def fail(session: Session) -> bool:
            now = now_us()
            job = self._lock_job(session, job_id, now)
            if job is None or job.state not in dag.JOB_ACTIVE:
                return False
            self._end_job(session, job, dag.JOB_FAILED, reason, now)
            return True

        return self._tx(fail)

    def overdue_jobs(self) -> list[str]:
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(JobRow.id)
                    .where(JobRow.state.in_(dag.JOB_ACTIVE), JobRow.deadline_us < now_us())
                    .limit(100)
                )
            )

    def mark_running(self, job_ids: Iterable[str]) -> list[str]:
        """QUEUED -> RUNNING for jobs whose first task was claimed; returns those changed."""
        changed: list[str] = []

        def mark(session: Session) -> None:
            now = now_us()
            for job_id in sorted(set(job_ids)):
                r = session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.state == dag.JOB_QUEUED)
                    .values(state=dag.JOB_RUNNING, update_time_us=now)
                )
                if rowcount(r):
                    changed.append(job_id)

        self._tx(mark)
        return changed

    def unreported_jobs(self) -> list[str]:
        """Terminal jobs whose final status the Metadata service has not acknowledged."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(JobRow.id)
                    .where(
                        JobRow.state.in_(dag.JOB_TERMINAL), JobRow.notified_state != JobRow.state
                    )
                    .limit(100)
                )
            )

    def mark_notified(self, job_id: str, state: int) -> None:
        def mark(session: Session) -> None:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == state)
                .values(notified_state=state)
            )

        self._tx(mark)

    def delete_job(self, job_id: str) -> None:
        """The job and its tasks are gone (its video was deleted)."""

        def drop(session: Session) -> None:
            session.execute(delete(TaskRow).where(TaskRow.job_id == job_id))
            session.execute(delete(JobRow).where(JobRow.id == job_id))

        self._tx(drop)

    # --- claiming and leases -------------------------------------------------------------------

    def claim(self, worker_id: str, limit: int) -> list[Claimed]:
        """Lease up to `limit` runnable tasks to a worker, shared fairly between owners."""
        if limit <= 0:
            return []
        t = TaskRow
        with self._sessions() as session:  # read-only look first: idle polls never write
            if (
                session.scalar(
                    select(t.id).where(t.state == dag.PENDING, t.kind != dag.ASSEMBLE).limit(1)
                )
                is None
            ):
                return []

        def claim(session: Session) -> list[Claimed]:
            now = now_us()
            lease = secrets.token_hex(16)
            expire = now + _us(self._options.lease_seconds)
            chosen = self._fair_share(session, limit)
            if not chosen:
                return []
            rows = session.execute(
                update(t)
                .where(t.id.in_(chosen), t.state == dag.PENDING)
                .values(
                    state=dag.RUNNING,
                    attempts=t.attempts + 1,
                    worker_id=worker_id,
                    lease_id=lease,
                    lease_expire_us=expire,
                    progress=0.0,
                    update_time_us=now,
                )
                .returning(t.id, t.job_id, t.name, t.kind, t.attempts, t.spec)
            ).all()
            rows = sorted(rows, key=lambda r: r.id)
            return [
                Claimed(r.job_id, r.name, r.kind, r.attempts, lease, expire, bytes(r.spec))
                for r in rows
            ]

        return self._tx(claim)

    def _fair_share(self, session: Session, limit: int) -> list[int]:
        """Up to `limit` runnable task ids, shared fairly between owners: each pick goes to
        the owner with the fewest tasks running (counting the picks so far), oldest pending
        task first among equals and within an owner. So one user's fifty long videos do not
        make everyone else's single clip wait behind them. On PostgreSQL the picked rows are
        locked with SKIP LOCKED, so concurrent replicas pick different tasks."""
        t, j = TaskRow, JobRow
        runnable = (t.state == dag.PENDING) & (t.kind != dag.ASSEMBLE)
        heads = session.execute(
            select(j.owner, func.min(t.id))
            .select_from(t)
            .join(j, j.id == t.job_id)
            .where(runnable)
            .group_by(j.owner)
        ).all()
        if not heads:
            return []
        load = Counter(
            dict(
                session.execute(
                    select(j.owner, func.count())
                    .select_from(t)
                    .join(j, j.id == t.job_id)
                    .where(t.state == dag.RUNNING)
                    .group_by(j.owner)
                ).all()
            )
        )
        waiting = {owner for owner, _ in heads}
        chosen: list[int] = []
        oldest = {owner: first for owner, first in heads}
        while waiting and len(chosen) < limit:
            owner = min(waiting, key=lambda o: (load[o], oldest[o]))
            query = (
                select(t.id)
                .select_from(t)
                .join(j, j.id == t.job_id)
                .where(runnable, j.owner == owner, t.id.not_in(chosen))
                .order_by(t.id)
                .limit(1)
            )
            if self._skip_locked:
                query = query.with_for_update(of=t, skip_locked=True)
            task_id = session.scalar(query)
            if task_id is None:  # nothing left of this owner's (or all locked by others)
                waiting.discard(owner)
                continue
            chosen.append(task_id)
            load[owner] += 1
        return chosen

    def extend(self, keys: Iterable[TaskKey]) -> set[TaskKey]:
        """Pushes the leases still held one lease period ahead; returns those (the others were
        given up: cancelled, expired and re-queued, or finished)."""
        keys = list(keys)
        if not keys:
            return set()

        def extend(session: Session) -> set[TaskKey]:
            expire = now_us() + _us(self._options.lease_seconds)
            held: set[TaskKey] = set()
            for k in keys:
                r = session.execute(
                    update(TaskRow)
                    .where(
                        TaskRow.job_id == k.job_id,
                        TaskRow.name == k.name,
                        TaskRow.lease_id == k.lease_id,
                        TaskRow.state == dag.RUNNING,
                    )
                    .values(lease_expire_us=expire)
                )
                if rowcount(r):
                    held.add(k)
            return held

        return self._tx(extend)

    def progress(self, key: TaskKey, fraction: float) -> bool:
        def progress(session: Session) -> bool:
            now = now_us()
            r = session.execute(
                update(TaskRow)
                .where(
                    TaskRow.job_id == key.job_id,
                    TaskRow.name == key.name,
                    TaskRow.lease_id == key.lease_id,
                    TaskRow.state == dag.RUNNING,
                )
                .values(
                    progress=max(0.0, min(1.0, fraction)),
                    update_time_us=now,
                    lease_expire_us=now + _us(self._options.lease_seconds),
                )
            )
            return bool(rowcount(r))

        return self._tx(progress)

    def unclaim(self, key: TaskKey) -> None:
        """Gives a claimed task back without counting the attempt (it never reached a worker)."""

        def unclaim(session: Session) -> None:
            session.execute(
                update(TaskRow)
                .where(
                    TaskRow.job_id == key.job_id,
                    TaskRow.name == key.name,
                    TaskRow.lease_id == key.lease_id,
                    TaskRow.state == dag.RUNNING,
                )
                .values(
                    state=dag.PENDING,
                    attempts=TaskRow.attempts - 1,
                    worker_id="",
                    lease_id="",
                    lease_expire_us=0,
                )
            )

        self._tx(unclaim)

    def leases_of(self, worker_id: str, claimed: Iterable[tuple[str, str]]) -> list[TaskKey]:
        """The leases `worker_id` holds among `claimed` (task id
        `transcodeJobs/{job}/tasks/{task}`, lease id): a claim with the wrong lease id is none."""
        wanted = {(*p, lease) for task, lease in claimed if lease and (p := names.parse_task(task))}
        if not wanted:
            return []
        with self._sessions() as session:
            rows = session.execute(
                select(TaskRow.job_id, TaskRow.name, TaskRow.lease_id).where(
                    TaskRow.worker_id == worker_id,
                    TaskRow.state == dag.RUNNING,
                    TaskRow.job_id.in_({j for j, _, _ in wanted}),
                )
            ).all()
        return [
            TaskKey(r.job_id, r.name, r.lease_id)
            for r in rows
            if (r.job_id, r.name, r.lease_id) in wanted
        ]

    def expired_leases(self) -> list[TaskKey]:
        with self._sessions() as session:
            rows = session.execute(
                select(TaskRow.job_id, TaskRow.name, TaskRow.lease_id)
                .where(TaskRow.state == dag.RUNNING, TaskRow.lease_expire_us < now_us())
                .limit(500)
            ).all()
        return [TaskKey(r.job_id, r.name, r.lease_id) for r in rows]

    # --- results and failures --------------------------------------------------------------

    def complete(self, key: TaskKey, result: wapi.TaskResult) -> Outcome:
        def complete(session: Session) -> Outcome:
            now = now_us()
            out = Outcome(key.job_id)
            job = self._lock_job(session, key.job_id, now)
            task = self._held(session, key) if job is not None else None
            if job is None or task is None or job.state not in dag.JOB_ACTIVE:
                return out
            out.applied = True
            which = result.WhichOneof("output")
            if which != dag.expected_output(task.kind):
                return self._failed(
                    session,
                    job,
                    task,
                    out,
                    now,
                    retryable=True,
                    error=(
                        f"the worker answered a {task.name} task with a {which or 'empty'} result"
                    ),
                )
            if task.kind == dag.PROBE:
                info = dag.media_info(result.probe, job.source_size)
                try:
                    plan = dag.make_plan(info, self._options)
                except MediaError as exc:
                    return self._failed(
                        session, job, task, out, now, retryable=False, error=exc.message
                    )
                spec = wapi.TaskAssignment.FromString(task.spec).probe
                source = wapi.SourceRef(
                    bucket=spec.source.bucket,
                    key=spec.source.key,
                    size_bytes=spec.source.size_bytes,
                )
                output = wapi.OutputRef(
                    bucket=self._media_bucket, prefix=storage_keys.media_prefix(job.id)
                )
                planned = dag.planned_tasks(plan, source, output, self._options)
                existing = {t.name for t in self._tasks(session, job.id)}
                for p in planned:
                    if p.name not in existing:
                        session.add(self._task_row(job.id, p, now))
                job.plan = plan.to_json()
                job.total_tasks = 1 + len(planned)
                out.planned = True
            task.state = dag.SUCCEEDED
            task.result = result.SerializeToString()
            task.progress = 1.0
            task.lease_id = ""
            task.lease_expire_us = 0
            task.last_error = ""
            task.update_time_us = now
            session.flush()
            out.completed, out.total = self._count(session, job)
            out.published_candidate = task.kind in (dag.VIDEO_CHUNK, dag.AUDIO)
            states = {t.name: t.state for t in self._tasks(session, job.id)}
            out.assemble_ready = dag.assemble_ready(states)
            out.stage = dag.stage(job.state, bool(job.plan), states)
            return out

        return self._tx(complete)

    def fail(self, key: TaskKey, error: str, retryable: bool) -> Outcome:
        def fail(session: Session) -> Outcome:
            now = now_us()
            out = Outcome(key.job_id)
            job = self._lock_job(session, key.job_id, now)
            task = self._held(session, key) if job is not None else None
            if job is None or task is None or job.state not in dag.JOB_ACTIVE:
                return out
            out.applied = True
            return self._failed(session, job, task, out, now, retryable=retryable, error=error)

        return self._tx(fail)

    def _failed(
        self,
        session: Session,
        job: JobRow,
        task: TaskRow,
        out: Outcome,
        now: int,
        *,
        retryable: bool,
        error: str,
    ) -> Outcome:
        task.last_error = error[:2000]
        task.lease_id = ""
        task.lease_expire_us = 0
        task.progress = 0.0
        task.update_time_us = now
        if dag.after_failure(task.attempts, self._options.max_attempts, retryable) == dag.RETRY:
            task.state = dag.PENDING
            task.worker_id = ""
            out.requeued = True
            session.flush()
            states = {t.name: t.state for t in self._tasks(session, job.id)}
            out.stage = dag.stage(job.state, bool(job.plan), states)
        else:
            task.state = dag.FAILED
            out.job_failed = dag.failure_reason(task.name, error, task.attempts, retryable)
            session.flush()
            self._end_job(session, job, dag.JOB_FAILED, out.job_failed, now)
        out.completed, out.total = self._count(session, job)
        return out

    # --- assembly and publication --------------------------------------------------------------

    def jobs_ready_to_assemble(self) -> list[str]:
        """RUNNING jobs whose assemble task is PENDING and every other task SUCCEEDED."""
        with self._sessions() as session:
            candidates = list(
                session.scalars(
                    select(TaskRow.job_id)
                    .join(JobRow, JobRow.id == TaskRow.job_id)
                    .where(
                        TaskRow.kind == dag.ASSEMBLE,
                        TaskRow.state == dag.PENDING,
                        JobRow.state == dag.JOB_RUNNING,
                    )
                    .limit(100)
                )
            )
            ready = []
            for job_id in candidates:
                left = session.scalar(
                    select(func.count())
                    .select_from(TaskRow)
                    .where(
                        TaskRow.job_id == job_id,
                        TaskRow.kind != dag.ASSEMBLE,
                        TaskRow.state != dag.SUCCEEDED,
                    )
                )
                if not left:
                    ready.append(job_id)
            return ready

    def jobs_to_publish(self) -> list[str]:
        """RUNNING jobs with a plan that have not published their final playlists."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(JobRow.id)
                    .where(
                        JobRow.state == dag.JOB_RUNNING,
                        JobRow.plan != "",
                        JobRow.published_run < dag.FINAL_PUBLISHED,
                    )
                    .limit(200)
                )
            )

    def claim_assemble(self, job_id: str, holder: str) -> TaskKey | None:
        """Leases the assemble task to this orchestrator once every other task succeeded, and
        closes progressive publication (published_run = FINAL_PUBLISHED)."""

        def claim(session: Session) -> TaskKey | None:
            now = now_us()
            job = self._lock_job(session, job_id, now)
            if job is None or job.state != dag.JOB_RUNNING:
                return None
            tasks = self._tasks(session, job_id)
            if not dag.assemble_ready({t.name: t.state for t in tasks}):
                return None
            task = next(t for t in tasks if t.name == dag.ASSEMBLE_TASK)
            if task.state != dag.PENDING:
                return None
            task.state = dag.RUNNING
            task.attempts += 1
            task.worker_id = holder
            task.lease_id = secrets.token_hex(16)
            task.lease_expire_us = now + _us(self._options.lease_seconds)
            task.update_time_us = now
            job.published_run = dag.FINAL_PUBLISHED
            return TaskKey(job_id, task.name, task.lease_id)

        return self._tx(claim)

    def finish_assemble(self, key: TaskKey, result: meta.ProcessingResult) -> bool:
        """The job SUCCEEDED; `result` (the final playlists' renditions, for READY) is kept
        with the assemble task, so reporting it again never assembles again."""

        def finish(session: Session) -> bool:
            now = now_us()
            job = self._lock_job(session, key.job_id, now)
            task = self._held(session, key) if job is not None else None
            if job is None or task is None or job.state != dag.JOB_RUNNING:
                return False
            task.state = dag.SUCCEEDED
            task.result = result.SerializeToString()
            task.progress = 1.0
            task.lease_id = ""
            task.lease_expire_us = 0
            task.update_time_us = now
            session.flush()
            self._count(session, job)
            job.state = dag.JOB_SUCCEEDED
            job.end_time_us = now
            if not job.first_playable_us:
                job.first_playable_us = now
            return True

        return self._tx(finish)

    def claim_publish(self, job_id: str, run: int) -> tuple[bool, bool]:
        """(claimed, first): may this caller publish EVENT playlists for `run` chunks; is it
        the first playable publication (time_to_first_playable is recorded then)."""

        def claim(session: Session) -> tuple[bool, bool]:
            now = now_us()
            job = self._lock_job(session, job_id, now)
            if job is None or job.state != dag.JOB_RUNNING:
                return False, False
            if not dag.should_publish(run, job.published_run):
                return False, False
            job.published_run = run
            first = not job.first_playable_us
            if first:
                job.first_playable_us = now
            return True, first

        return self._tx(claim)
