"""Tables of the Metadata service."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from streamify.core.db import Base


class VideoRow(Base):
    __tablename__ = "videos"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    owner: Mapped[str] = mapped_column(String(63))  # user id, without the "users/" prefix
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[int] = mapped_column(Integer)
    status: Mapped[int] = mapped_column(Integer)
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    source_size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    source_upload: Mapped[str] = mapped_column(String(63), default="")  # upload id, no prefix
    duration_us: Mapped[int] = mapped_column(BigInteger, default=0)
    renditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    manifest_path: Mapped[str] = mapped_column(String(1024), default="")
    poster_path: Mapped[str] = mapped_column(String(1024), default="")
    progress_completed: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    progress_stage: Mapped[str] = mapped_column(String(64), default="")
    # Microseconds since the epoch: exact, portable keyset comparisons on SQLite and PostgreSQL.
    create_time_us: Mapped[int] = mapped_column(BigInteger)
    update_time_us: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        Index("ix_videos_owner_newest", "owner", "create_time_us", "id"),
        Index("ix_videos_owner_status_newest", "owner", "status", "create_time_us", "id"),
    )


class IdempotencyKeyRow(Base):
    """The first response of a mutating call, replayed when the same request_id comes again."""

    __tablename__ = "idempotency_keys"

    caller: Mapped[str] = mapped_column(String(80), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    method: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes] = mapped_column(LargeBinary)
    create_time_us: Mapped[int] = mapped_column(BigInteger, index=True)


class VideoEventRow(Base):
    """The feed the cleaning services follow (ListVideoEvents), written in the transaction of
    the change it records. `id` is the sequence: writers of events take one lock
    (`store.record_event`), so ids become visible in increasing order and a follower that has
    read up to N never misses a smaller one committed later."""

    __tablename__ = "video_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    video_id: Mapped[str] = mapped_column(String(63))
    owner: Mapped[str] = mapped_column(String(63))
    kind: Mapped[int] = mapped_column(Integer)  # VideoEventType
    create_time_us: Mapped[int] = mapped_column(BigInteger, index=True)
