"""The layers of docs/architecture.md hold: import-linter's contracts ([tool.importlinter] in
pyproject.toml) over the code as it is. A service that imports another, a media module that
imports gRPC, or a pure module that does I/O fails here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]


def test_every_import_contract_is_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    done = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout and "6 kept" in done.stdout, done.stdout[-2000:]


def test_the_orchestrator_program_starts_without_pyav():
    """What an orchestrator image without PyAV does: import the program with `av` unimportable.
    import-linter cannot see this one: importing `streamify.transcode.media.ladder` also runs
    `media/__init__.py`, which must therefore import no PyAV module."""
    code = (
        "import sys; sys.modules['av'] = None\n"  # `import av` now raises ImportError
        "import streamify.transcode.orchestrator.app"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
