"""Tables of the Upload service."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from streamify.core import storage_keys
from streamify.core.db import Base
from streamify.core.event_cursor import EventCursorColumns


class UploadRow(Base):
    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    owner: Mapped[str] = mapped_column(String(63))
    video_id: Mapped[str] = mapped_column(String(63))
    file_name: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[int] = mapped_column(Integer)
    multipart: Mapped[bool] = mapped_column(Boolean)
    bucket: Mapped[str] = mapped_column(String(63))
    object_key: Mapped[str] = mapped_column(String(1024))
    s3_upload_id: Mapped[str] = mapped_column(String(1024), default="")
    part_size: Mapped[int] = mapped_column(BigInteger, default=0)
    part_count: Mapped[int] = mapped_column(Integer, default=0)
    request_id: Mapped[str] = mapped_column(String(64), default="")
    create_time_us: Mapped[int] = mapped_column(BigInteger)
    expire_time_us: Mapped[int] = mapped_column(BigInteger)
    end_reason: Mapped[str] = mapped_column(Text, default="")

    @property
    def source_key(self) -> str:
        """The sealed key the source is read from once the upload is complete. For a single
        PUT it differs from `object_key`, where the client's URL writes."""
        return storage_keys.source_key(self.video_id, self.id)

    __table_args__ = (
        Index("ix_uploads_owner_state", "owner", "state"),
        Index("ix_uploads_state_expiry", "state", "expire_time_us"),
        Index("ix_uploads_owner_request", "owner", "request_id"),
    )


class OutboxRow(Base):
    """Work that must follow a committed upload state change, done at least once by the relay."""

    __tablename__ = "upload_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    upload_id: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(32))  # "uploaded" or "failed"
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    create_time_us: Mapped[int] = mapped_column(BigInteger)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # the relay working on the row, until when (a crashed relay's rows are retried after that)
    claimed_by: Mapped[str] = mapped_column(String(64), default="")
    claimed_until_us: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (Index("ix_upload_outbox_pending", "done", "id"),)


class EventCursorRow(EventCursorColumns, Base):
    """How far the Upload service's follower of video events got."""

    __tablename__ = "upload_event_cursors"
