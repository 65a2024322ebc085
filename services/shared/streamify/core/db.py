"""SQLAlchemy engine and session factory shared by the services that keep state.

Embedded mode uses a SQLite file (WAL, so readers never block the writer); at scale the same
code runs on PostgreSQL through psycopg 3. Sessions are synchronous and run in worker threads
(`run_in_thread`) so the asyncio gRPC servers never block on the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

T = TypeVar("T")


class Base(DeclarativeBase):
    """Declarative base of every table Streamify owns."""


def normalise_url(url: str) -> str:
    """Accepts the URL forms people paste (postgres://, postgresql://) and picks psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(
            dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry
        ) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def rowcount(result: Result[*tuple[Any, ...]]) -> int:
    """How many rows the UPDATE or DELETE that `session.execute` ran matched.

    Session.execute is typed as returning a Result, whatever the statement; for an UPDATE or a
    DELETE it is the connection's CursorResult, which has the count: the cast says so."""
    return cast("CursorResult[*tuple[Any, ...]]", result).rowcount


async def run_in_thread(fn: Callable[..., T], *args: object) -> T:
    return await asyncio.to_thread(fn, *args)
