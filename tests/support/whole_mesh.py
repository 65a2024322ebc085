"""One whole mesh (`streamify run` on free ports, tests/support/local_mesh.py) for every tier
that needs it (e2e, interop): started on first use, stopped at the end of the session."""

from __future__ import annotations

import pytest

from tests.support.local_mesh import LocalMesh, local_mesh


@pytest.fixture(scope="session")
def whole_mesh(tmp_path_factory) -> LocalMesh:
    with local_mesh(tmp_path_factory.mktemp("mesh")) as running:
        yield running
