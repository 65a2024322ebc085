"""Alembic environment of the Metadata service."""

from streamify.core.migrations import run_env
from streamify.metadata import models  # noqa: F401  (registers the tables)
from streamify.metadata.schema import TABLES

run_env(TABLES)
