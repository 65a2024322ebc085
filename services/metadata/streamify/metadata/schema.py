"""Applies the Metadata service's Alembic migrations (at start-up and by `streamify migrate`)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from streamify.core import migrations

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_metadata"
TABLES = frozenset({"videos", "idempotency_keys"})


def upgrade(engine: Engine, revision: str = "head") -> None:
    migrations.upgrade(engine, MIGRATIONS, VERSION_TABLE, revision)
