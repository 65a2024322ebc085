"""`streamify migrate` (the deploy job's command) creates every component's tables, on SQLite and
on a real PostgreSQL, and a second run changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, inspect

from streamify.core.db import normalise_url
from streamify.core.queue import database as queue_schema
from streamify.metadata import schema as metadata_schema
from streamify.transcode.orchestrator import schema as transcode_schema
from streamify.upload import schema as upload_schema

pytestmark = pytest.mark.integration
COMPONENTS = (metadata_schema, upload_schema, transcode_schema, queue_schema)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path, postgres_server) -> str:
    return (
        f"sqlite:///{tmp_path / 'deploy.db'}"
        if request.param == "sqlite"
        else postgres_server.new_database()
    )


def migrate(url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
    env["STREAMIFY_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "streamify.cli", "migrate"], env=env, capture_output=True, text=True
    )


def test_migrate_creates_every_components_tables_once(database_url):
    first = migrate(database_url)
    assert first.returncode == 0, first.stderr
    tables = set(inspect(create_engine(normalise_url(database_url))).get_table_names())
    for component in COMPONENTS:
        assert tables >= component.TABLES, (component.__name__, component.TABLES - tables)
        assert component.VERSION_TABLE in tables
    again = migrate(database_url)
    assert again.returncode == 0 and "up to date" in again.stdout, again.stderr
