"""Runs one component's Alembic migrations.

Every component that owns tables (the Metadata service, the Upload service, the database
queue, the transcode orchestrator) keeps its own migration history in its own package, with
its own version table, so they can share one database (embedded mode) or use separate ones.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine


def upgrade(
    engine: Engine, script_location: Path, version_table: str, revision: str = "head"
) -> None:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["version_table"] = version_table
        command.upgrade(config, revision)


def run_env(tables: frozenset[str]) -> None:
    """The body of every component's Alembic env.py: migrate only the component's own tables
    (all tables share one declarative Base, and may share one database)."""
    from alembic import context

    from streamify.core.db import Base

    config = context.config
    context.configure(
        connection=config.attributes["connection"],
        target_metadata=Base.metadata,
        version_table=config.attributes["version_table"],
        include_name=lambda name, type_, _parent: type_ != "table" or name in tables,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
