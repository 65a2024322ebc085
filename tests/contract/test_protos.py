"""The API contracts: buf lint, no breaking change since the previous commit, fresh stubs."""

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from streamify.core import protogen

pytestmark = pytest.mark.contract
ROOT = Path(__file__).resolve().parents[2]


def buf(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("buf") or str(ROOT / "node_modules" / ".bin" / "buf")
    return subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True)


def test_buf_lint_passes():
    result = buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


# The released API as buf sees it (a descriptor image), refreshed deliberately when a version
# ships: `node_modules/.bin/buf build -o proto/baseline.binpb`. Anything in it must keep working,
# whatever the depth of the clone the suite runs in.
BASELINE = "proto/baseline.binpb"


def test_no_breaking_change_against_the_released_baseline():
    result = buf("breaking", "--against", BASELINE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_breaking_change_against_the_previous_commit():
    """Also what was added since the baseline. A clone without the parent commit (shallow)
    fetches it; where that is impossible the baseline check above still holds."""
    parent = ["git", "rev-parse", "--verify", "--quiet", "HEAD~1"]
    if subprocess.run(parent, cwd=ROOT, capture_output=True).returncode != 0:
        quiet = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # never wait for a password
        with contextlib.suppress(subprocess.TimeoutExpired):
            fetch = ["git", "fetch", "-q", "--deepen=1"]
            subprocess.run(fetch, cwd=ROOT, capture_output=True, env=quiet, timeout=120)
    has_parent = subprocess.run(parent, cwd=ROOT, capture_output=True).returncode == 0
    result = buf("breaking", "--against", ".git#ref=HEAD~1" if has_parent else BASELINE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_stubs_are_fresh():
    stale = protogen.stale_files()
    assert stale == [], f"regenerate with `./streamify protos`; stale: {stale}"
