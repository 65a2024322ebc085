"""The job queue as a table in the service's own SQL database (SQLite embedded, PostgreSQL).

A row is available when `visible_at_us` has passed; receiving bumps `deliveries`, pushes
`visible_at_us` one visibility timeout ahead and sets a fresh `lease` token in one UPDATE, so
a consumer that dies simply lets the lease run out. PostgreSQL picks the rows with
FOR UPDATE SKIP LOCKED (concurrent consumers skip each other's rows instead of waiting);
SQLite has a single writer, so its UPDATE ... RETURNING is already an atomic claim.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Select

from streamify.core import migrations
from streamify.core.clock import now_us
from streamify.core.config import Settings
from streamify.core.db import Base, make_engine
from streamify.core.queue import Delivery, LeaseLost

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_queue"
TABLES = frozenset({"queue_messages"})

messages = Table(
    "queue_messages",
    Base.metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("queue", String(100), nullable=False),
    Column("key", String(255), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("visible_at_us", BigInteger, nullable=False),
    Column("lease", String(32), nullable=True),
    Column("dead_at_us", BigInteger, nullable=True),  # set = dead-lettered, never delivered again
    Column("create_time_us", BigInteger, nullable=False),
    Index("ix_queue_messages_ready", "queue", "visible_at_us", "id"),
)


def upgrade(engine: Engine, revision: str = "head") -> None:
    migrations.upgrade(engine, MIGRATIONS, VERSION_TABLE, revision)


def _us(seconds: float) -> int:
    return int(seconds * 1_000_000)


class DatabaseQueue:
    def __init__(
        self,
        engine: Engine,
        name: str,
        visibility_timeout: float,
        max_deliveries: int,
        *,
        poll_interval: float = 0.2,
        owns_engine: bool = False,
    ) -> None:
        self._engine = engine
        self._name = name
        self._visibility_us = _us(visibility_timeout)
        self._max_deliveries = max_deliveries
        self._poll_interval = poll_interval
        self._owns_engine = owns_engine
        self._skip_locked = engine.dialect.name == "postgresql"

    @classmethod
    def from_settings(cls, settings: Settings, name: str) -> DatabaseQueue:
        engine = make_engine(settings.resolved_database_url)
        upgrade(engine)
        return cls(
            engine,
            name,
            settings.queue.visibility_timeout_seconds,
            settings.queue.max_deliveries,
            owns_engine=True,
        )

    # --- publishing ---------------------------------------------------------------------

    def publish_in(self, session: Session, key: str, body: bytes) -> None:
        """Enqueue inside the caller's transaction: the job exists iff the caller commits."""
        session.execute(insert(messages).values(self._row(key, body)))

    async def publish(self, key: str, body: bytes) -> None:
        await asyncio.to_thread(self._publish, key, body)

    def _publish(self, key: str, body: bytes) -> None:
        with self._engine.begin() as conn:
            conn.execute(insert(messages).values(self._row(key, body)))

    def _row(self, key: str, body: bytes) -> dict[str, object]:
        now = now_us()
        return {
            "queue": self._name,
            "key": key,
            "body": body,
            "deliveries": 0,
            "visible_at_us": now,
            "lease": None,
            "dead_at_us": None,
            "create_time_us": now,
        }

    # --- consuming ----------------------------------------------------------------------

    async def receive(self, max_messages: int = 1, wait_seconds: float = 1.0) -> list[Delivery]:
        deadline = time.monotonic() + wait_seconds
        while True:
            got = await asyncio.to_thread(self._claim, max_messages)
            remaining = deadline - time.monotonic()
            if got or remaining <= 0:
                return got
            await asyncio.sleep(min(self._poll_interval, remaining))

    def _ready_where(self) -> tuple[ColumnElement[bool], ...]:
        m = messages.c
        return (m.queue == self._name, m.dead_at_us.is_(None), m.visible_at_us <= now_us())

    def _ready(self, *where: ColumnElement[bool]) -> Select[int]:
        query = select(messages.c.id).where(*self._ready_where(), *where)
        return query.with_for_update(skip_locked=True) if self._skip_locked else query

    def _claim(self, limit: int) -> list[Delivery]:
        m = messages.c
        # Read-only look first, in its own transaction: an idle poll then never takes SQLite's
        # single write lock (which the services' own writes need).
        with self._engine.connect() as conn:
            if conn.execute(select(m.id).where(*self._ready_where()).limit(1)).first() is None:
                return []
        now, lease = now_us(), secrets.token_hex(16)
        with self._engine.begin() as conn:
            # Leases that ran out on their last allowed delivery: dead-letter, don't re-deliver.
            exhausted = self._ready(m.deliveries >= self._max_deliveries).limit(100)
            conn.execute(
                update(messages)
                .where(m.id.in_(exhausted.scalar_subquery()))
                .values(dead_at_us=now, lease=None)
            )
            ready = self._ready(m.deliveries < self._max_deliveries)
            ready = ready.order_by(m.visible_at_us, m.id).limit(limit)
            rows = conn.execute(
                update(messages)
                .where(m.id.in_(ready.scalar_subquery()))
                .values(
                    deliveries=m.deliveries + 1,
                    visible_at_us=now + self._visibility_us,
                    lease=lease,
                )
                .returning(m.id, m.key, m.body, m.deliveries)
            ).all()
        rows = sorted(rows, key=lambda r: r.id)
        return [Delivery(str(r.id), r.key, bytes(r.body), r.deliveries, lease) for r in rows]

    async def ack(self, delivery: Delivery) -> None:
        await asyncio.to_thread(self._ack, delivery)

    def _ack(self, delivery: Delivery) -> None:
        # By id, not lease: the work is done even if the lease ran out meanwhile.
        with self._engine.begin() as conn:
            conn.execute(delete(messages).where(messages.c.id == int(delivery.message_id)))

    async def release(self, delivery: Delivery, delay_seconds: float = 0) -> None:
        await asyncio.to_thread(self._set_visible, delivery, delay_seconds, True)

    async def extend(self, delivery: Delivery, seconds: float) -> None:
        if not await asyncio.to_thread(self._set_visible, delivery, seconds, False):
            raise LeaseLost(f"job {delivery.message_id} is no longer leased by this consumer")

    def _set_visible(self, delivery: Delivery, seconds: float, release: bool) -> bool:
        m = messages.c
        values: dict[str, object] = {"visible_at_us": now_us() + _us(seconds)}
        if release:
            values["lease"] = None
        with self._engine.begin() as conn:
            result = conn.execute(
                update(messages)
                .where(
                    m.id == int(delivery.message_id),
                    m.lease == delivery.receipt,
                    m.dead_at_us.is_(None),
                )
                .values(**values)
            )
        return result.rowcount == 1

    async def dead_letters(self, limit: int = 100) -> list[Delivery]:
        return await asyncio.to_thread(self._dead_letters, limit)

    def _dead_letters(self, limit: int) -> list[Delivery]:
        m = messages.c
        query = (
            select(m.id, m.key, m.body, m.deliveries)
            .where(m.queue == self._name, m.dead_at_us.is_not(None))
            .order_by(m.dead_at_us, m.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Delivery(str(r.id), r.key, bytes(r.body), r.deliveries, "") for r in rows]

    async def close(self) -> None:
        if self._owns_engine:
            await asyncio.to_thread(self._engine.dispose)
