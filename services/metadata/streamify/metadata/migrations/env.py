"""Alembic environment: runs against the connection handed in by streamify.metadata.schema."""

from alembic import context

from streamify.core.db import Base
from streamify.metadata import models  # noqa: F401  (registers the tables on Base.metadata)

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
