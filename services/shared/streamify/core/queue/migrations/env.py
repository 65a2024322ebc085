"""Alembic environment of the database job queue."""

from streamify.core.migrations import run_env
from streamify.core.queue.database import TABLES

run_env(TABLES)
