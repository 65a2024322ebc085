"""Outside embedded mode a process refuses to start on a secret anyone could guess: no key, or
one too short to resist an offline search from a single token. One line on stderr, exit
status 2, no traceback: an operator sees what to fix. Each role's real entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.security

BIN = Path(sys.executable).parent
ROLES = {
    "metadata": [str(BIN / "streamify"), "serve", "metadata", "--port", "0"],
    "upload": [str(BIN / "streamify"), "serve", "upload", "--port", "0"],
    "transcode": [str(BIN / "streamify"), "serve", "transcode", "--port", "0"],
    "worker": [str(BIN / "streamify-worker"), "--orchestrator", "127.0.0.1:9"],
}


def start(role: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
    clean |= {"STREAMIFY_DATA_DIR": str(tmp_path), "STREAMIFY_LOG_LEVEL": "WARNING", **env}
    return subprocess.run(
        ROLES[role], env=clean, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize(
    ("secret", "says"),
    [
        ("change-me", "STREAMIFY_JWT_SECRET is 9 bytes; use at least 32 random ones"),
        (None, "no token signing key: set STREAMIFY_JWT_SECRET"),
    ],
    ids=["short", "missing"],
)
def test_a_weak_or_missing_signing_key_stops_the_process_with_one_clear_line(
    role, tmp_path, secret, says
):
    done = start(role, tmp_path, **({"STREAMIFY_JWT_SECRET": secret} if secret else {}))
    assert done.returncode == 2, done.stderr[-3000:]
    assert "refusing to start: " + says in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
