"""Durable video records (SQLAlchemy, SQLite or PostgreSQL). Synchronous: call from a thread.

Mutations run through `mutate`, which makes a call with a `request_id` apply once: the first
response is stored in the same transaction as the change and replayed on a retry.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, select, text, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from streamify.core.clock import now_us
from streamify.core.db import rowcount
from streamify.metadata.models import IdempotencyKeyRow, VideoEventRow, VideoRow
from streamify.metadata.page_tokens import PagePosition
from streamify.v1.video_pb2 import Visibility

Mutation = Callable[[Session], bytes]


class VideoStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get(self, video_id: str) -> VideoRow | None:
        with self._sessions() as session:
            return session.get(VideoRow, video_id)

    def list_page(
        self,
        *,
        owner: str | None,
        status: int | None,
        public_only: bool,
        after: PagePosition | None,
        limit: int,
    ) -> list[VideoRow]:
        query = select(VideoRow)
        if owner is not None:
            query = query.where(VideoRow.owner == owner)
        if status:
            query = query.where(VideoRow.status == status)
        if public_only:
            query = query.where(VideoRow.visibility == Visibility.VISIBILITY_PUBLIC)
        if after is not None:
            query = query.where(
                tuple_(VideoRow.create_time_us, VideoRow.id)
                < (after.create_time_us, after.video_id)
            )
        query = query.order_by(VideoRow.create_time_us.desc(), VideoRow.id.desc()).limit(limit)
        with self._sessions() as session:
            return list(session.scalars(query))

    def mutate(self, caller: str, method: str, request_id: str, change: Mutation) -> bytes:
        """Runs `change` in one transaction; with a request_id, at most once per caller."""
        with self._sessions() as session:
            if request_id:
                stored = session.get(IdempotencyKeyRow, (caller, request_id))
                if stored is not None:
                    return stored.response
            response = change(session)
            if request_id:
                session.add(
                    IdempotencyKeyRow(
                        caller=caller,
                        request_id=request_id,
                        method=method,
                        response=response,
                        create_time_us=now_us(),
                    )
                )
            try:
                session.commit()
            except IntegrityError:
                # A concurrent retry with the same request_id won: replay its response.
                session.rollback()
                stored = session.get(IdempotencyKeyRow, (caller, request_id))
                if stored is None:
                    raise
                return stored.response
            return response

    def events_after(self, sequence: int, limit: int) -> list[VideoEventRow]:
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(VideoEventRow)
                    .where(VideoEventRow.id > sequence)
                    .order_by(VideoEventRow.id)
                    .limit(limit)
                )
            )

    def delete_events_before(self, cutoff_us: int) -> int:
        with self._sessions() as session:
            result = session.execute(
                delete(VideoEventRow).where(VideoEventRow.create_time_us < cutoff_us)
            )
            session.commit()
            return rowcount(result) or 0

    def delete_idempotency_keys_before(self, cutoff_us: int) -> int:
        with self._sessions() as session:
            result = session.execute(
                delete(IdempotencyKeyRow).where(IdempotencyKeyRow.create_time_us < cutoff_us)
            )
            session.commit()
            return rowcount(result) or 0


def locked_video(session: Session, video_id: str) -> VideoRow | None:
    """The row, locked for the rest of the transaction (FOR UPDATE on PostgreSQL)."""
    return session.scalars(
        select(VideoRow).where(VideoRow.id == video_id).with_for_update()
    ).one_or_none()


EVENTS_LOCK = 0x5354_5645  # "STVE": the PostgreSQL advisory lock event writers take


def record_event(session: Session, row: VideoRow, kind: int) -> None:
    """Adds an event for `row` to the transaction. On PostgreSQL, event writers first take one
    transaction-scoped lock, so sequences commit in the order they are assigned (SQLite
    serializes writers anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENTS_LOCK})
    session.add(VideoEventRow(video_id=row.id, owner=row.owner, kind=kind, create_time_us=now_us()))
