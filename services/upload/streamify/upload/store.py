"""Durable upload records (SQLAlchemy, SQLite or PostgreSQL). Synchronous: call from a thread.

An upload ends once: `complete` and `abort` move it out of PENDING only if it is still there,
and write the outbox entry that tells the rest of the system in the same transaction, so a
lost reply, a retry or a race with the sweeper never reports an upload twice.
"""

from __future__ import annotations

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from streamify.core.clock import now_us
from streamify.core.db import rowcount
from streamify.upload.models import OutboxRow, UploadRow
from streamify.upload.outbox import uploaded_event
from streamify.v1.upload_service_pb2 import UploadState

PENDING, COMPLETED, ABORTED = (
    UploadState.UPLOAD_STATE_PENDING,
    UploadState.UPLOAD_STATE_COMPLETED,
    UploadState.UPLOAD_STATE_ABORTED,
)


class UploadStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get(self, upload_id: str) -> UploadRow | None:
        with self._sessions() as session:
            return session.get(UploadRow, upload_id)

    def by_request_id(self, owner: str, request_id: str) -> UploadRow | None:
        with self._sessions() as session:
            return session.scalars(
                select(UploadRow).where(
                    UploadRow.owner == owner, UploadRow.request_id == request_id
                )
            ).first()

    def pending_count(self, owner: str) -> int:
        with self._sessions() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(UploadRow)
                    .where(UploadRow.owner == owner, UploadRow.state == PENDING)
                )
                or 0
            )

    def expired(self, now_us: int, limit: int = 100) -> list[UploadRow]:
        """Pending uploads whose time ran out before `now_us`, oldest batch first."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(UploadRow)
                    .where(UploadRow.state == PENDING, UploadRow.expire_time_us < now_us)
                    .limit(limit)
                )
            )

    def pending_of_video(self, video_id: str) -> list[UploadRow]:
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(UploadRow).where(
                        UploadRow.video_id == video_id, UploadRow.state == PENDING
                    )
                )
            )

    def pending_keys(self, keys: list[str]) -> set[str]:
        """Which of these object keys a pending upload still writes to."""
        with self._sessions() as session:
            return set(
                session.scalars(
                    select(UploadRow.object_key).where(
                        UploadRow.object_key.in_(keys), UploadRow.state == PENDING
                    )
                )
            )

    def insert(self, row: UploadRow, max_pending: int) -> bool:
        """Adds a pending upload unless its owner would then have more than `max_pending`:
        False then. Race-free: the insert comes first (on SQLite it takes the write lock, so
        concurrent inserts queue), and on PostgreSQL one lock per owner orders them, so two
        concurrent calls never both see room for one."""
        with self._sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:owner))"),
                    {"owner": f"pending-uploads:{row.owner}"},
                )
            session.add(row)
            session.flush()
            pending = session.scalar(
                select(func.count())
                .select_from(UploadRow)
                .where(UploadRow.owner == row.owner, UploadRow.state == PENDING)
            )
            if (pending or 0) > max_pending:
                session.rollback()
                return False
            session.commit()
            return True

    def complete(self, row: UploadRow) -> bool:
        """PENDING -> COMPLETED with an "uploaded" outbox entry; False if it had already ended."""
        return self._end(row, COMPLETED, "", "uploaded", uploaded_event(row).SerializeToString())

    def abort(self, row: UploadRow, reason: str) -> bool:
        """PENDING -> ABORTED with a "failed" outbox entry; False if it had already ended."""
        return self._end(row, ABORTED, reason, "failed", reason.encode())

    def _end(self, row: UploadRow, state: int, reason: str, kind: str, payload: bytes) -> bool:
        with self._sessions() as session:
            won = rowcount(
                session.execute(
                    update(UploadRow)
                    .where(UploadRow.id == row.id, UploadRow.state == PENDING)
                    .values(state=state, end_reason=reason)
                )
            )
            if won:
                session.add(
                    OutboxRow(
                        upload_id=row.id,
                        kind=kind,
                        payload=payload,
                        create_time_us=now_us(),
                        done=False,
                        attempts=0,
                        last_error="",
                    )
                )
            session.commit()
        return bool(won)
