"""Alembic environment of the transcode orchestrator."""

from streamify.core.migrations import run_env
from streamify.transcode.orchestrator import models  # noqa: F401  (registers the tables)
from streamify.transcode.orchestrator.schema import TABLES

run_env(TABLES)
