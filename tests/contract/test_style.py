"""The code reads one way everywhere: ruff's lint rules and its formatter ([tool.ruff] in
pyproject.toml) over every Python file we write (generated stubs excluded)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
TREES = ["services", "tests", "bench", "loadtest"]


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *TREES], cwd=ROOT, capture_output=True, text=True
    )


def test_ruff_finds_nothing_to_fix():
    done = ruff("check", "--no-cache")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-1000:]


def test_every_file_is_formatted():
    done = ruff("format", "--check", "--no-cache")
    assert done.returncode == 0, (
        f"run: .venv/bin/ruff format {' '.join(TREES)}\n{done.stdout[-3000:]}"
    )
