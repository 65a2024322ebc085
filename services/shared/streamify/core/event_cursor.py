"""Where a follower of the video event feed (`streamify.core.video_events`) keeps its position
in a service with a database: one row per follower in a table of its own."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker


class EventCursorColumns:
    """The columns of a service's table of follower positions (one row per follower)."""

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, default=0)


class SqlCursor:
    """A follower's position, kept in a row of `table` (a model with EventCursorColumns)."""

    def __init__(
        self, sessions: sessionmaker[Session], table: type[EventCursorColumns], name: str
    ) -> None:
        self._sessions = sessions
        self._table = table
        self.name = name

    def load(self) -> int:
        with self._sessions() as session:
            row = session.get(self._table, self.name)
            return row.sequence if row is not None else 0

    def save(self, sequence: int) -> None:
        with self._sessions() as session:
            row = session.get(self._table, self.name)
            if row is None:
                session.add(self._table(name=self.name, sequence=sequence))  # type: ignore[call-arg]
            else:
                row.sequence = max(row.sequence, sequence)
            session.commit()
