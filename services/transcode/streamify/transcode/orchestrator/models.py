"""Tables of the transcode orchestrator: one row per job (the plan), one per DAG task.

Times are integer microseconds since the epoch (as in the other services), so the same SQL
works on SQLite and PostgreSQL without timezone handling.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from streamify.core.db import Base
from streamify.core.event_cursor import EventCursorColumns


class JobRow(Base):
    __tablename__ = "transcode_jobs"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)  # = the video id
    owner: Mapped[str] = mapped_column(String(63), default="")  # "users/alice", "" if unknown
    state: Mapped[int] = mapped_column(Integer)  # JobState
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    source_bucket: Mapped[str] = mapped_column(String(63))
    source_key: Mapped[str] = mapped_column(String(1024))
    source_size: Mapped[int] = mapped_column(BigInteger, default=0)
    plan: Mapped[str] = mapped_column(Text, default="")  # JSON of dag.Plan, "" before the probe
    total_tasks: Mapped[int] = mapped_column(Integer, default=0)
    completed_tasks: Mapped[int] = mapped_column(Integer, default=0)
    # Chunks of the leading finished run already published as EVENT playlists;
    # dag.FINAL_PUBLISHED once the final (VOD) playlists are being written.
    published_run: Mapped[int] = mapped_column(Integer, default=0)
    first_playable_us: Mapped[int] = mapped_column(BigInteger, default=0)
    notified_state: Mapped[int] = mapped_column(Integer, default=0)  # last terminal state reported
    retry_request_id: Mapped[str] = mapped_column(String(64), default="")
    cancel_request_id: Mapped[str] = mapped_column(String(64), default="")
    create_time_us: Mapped[int] = mapped_column(BigInteger)
    update_time_us: Mapped[int] = mapped_column(BigInteger)
    end_time_us: Mapped[int] = mapped_column(BigInteger, default=0)
    deadline_us: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_transcode_jobs_created", "create_time_us", "id"),
        Index("ix_transcode_jobs_state_created", "state", "create_time_us", "id"),
        Index("ix_transcode_jobs_owner_created", "owner", "create_time_us", "id"),
    )


class TaskRow(Base):
    __tablename__ = "transcode_tasks"

    # A surrogate key: claims select ids (FOR UPDATE SKIP LOCKED on PostgreSQL) and update them.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(32))  # "probe", "chunk-0003", "audio", ...
    kind: Mapped[int] = mapped_column(Integer)  # TaskKind
    chunk_index: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[int] = mapped_column(Integer)  # TaskState
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str] = mapped_column(String(128), default="")
    lease_id: Mapped[str] = mapped_column(String(32), default="")
    lease_expire_us: Mapped[int] = mapped_column(BigInteger, default=0)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    spec: Mapped[bytes] = mapped_column(LargeBinary, default=b"")  # TaskAssignment, spec only
    # TaskResult; for the assemble task, the metadata ProcessingResult of the final playlists.
    result: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    create_time_us: Mapped[int] = mapped_column(BigInteger)
    update_time_us: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("job_id", "name", name="uq_transcode_tasks_job_name"),
        Index("ix_transcode_tasks_state_kind", "state", "kind", "id"),
        Index("ix_transcode_tasks_state_lease", "state", "lease_expire_us"),
    )


class EventCursorRow(EventCursorColumns, Base):
    """How far the orchestrator's followers of video events got."""

    __tablename__ = "transcode_event_cursors"
