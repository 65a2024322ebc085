"""Applies the transcode orchestrator's Alembic migrations."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from streamify.core import migrations

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_transcode"
TABLES = frozenset({"transcode_jobs", "transcode_tasks"})


def upgrade(engine: Engine, revision: str = "head") -> None:
    migrations.upgrade(engine, MIGRATIONS, VERSION_TABLE, revision)
