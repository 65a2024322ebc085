"""Fixtures of the browser end-to-end tests: the whole mesh, started as the README does.

mesh_url   -> base URL of the Envoy gateway serving the page at `/`, the API (grpc-web, same
              origin) and `/media`, without a trailing slash.
mesh_token -> a user bearer token the mesh accepts.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mesh(whole_mesh):
    return whole_mesh


@pytest.fixture(scope="session")
def mesh_url(mesh) -> str:
    return mesh.url


@pytest.fixture(scope="session")
def mesh_token(mesh) -> str:
    return mesh.token("e2e")
