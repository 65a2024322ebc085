"""Alembic environment of the Upload service."""

from streamify.core.migrations import run_env
from streamify.upload import models  # noqa: F401  (registers the tables)
from streamify.upload.schema import TABLES

run_env(TABLES)
