"""The API contracts: buf lint, no breaking change since the previous commit, fresh stubs."""

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


def test_no_breaking_change_against_previous_commit():
    has_parent = (
        subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD~1"], cwd=ROOT, capture_output=True
        ).returncode
        == 0
    )
    against = ".git#ref=HEAD~1" if has_parent else ".git#ref=HEAD"
    result = buf("breaking", "--against", against)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_stubs_are_fresh():
    stale = protogen.stale_files()
    assert stale == [], f"regenerate with `./streamify protos`; stale: {stale}"
