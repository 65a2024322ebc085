"""Alembic environment: runs on the connection handed in by streamify.core.migrations."""

from alembic import context

from streamify.core.db import Base
from streamify.metadata import models  # noqa: F401  (registers the tables on Base.metadata)

config = context.config
context.configure(
    connection=config.attributes["connection"],
    target_metadata=Base.metadata,
    version_table=config.attributes["version_table"],
    include_name=lambda name, type_, _parent: type_ != "table" or name in {"videos", "idempotency_keys"},
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
