"""Chaos under load, for tests/integration/test_chaos.py: the whole mesh (`streamify run` on free
ports with a temporary data dir, stopped by PID) and the load test's own command
(loadtest/run.py, which runs locust from loadtest/.venv and kills replicas mid-run)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_PY = ROOT / "loadtest" / "run.py"


def _loadtest():
    spec = importlib.util.spec_from_file_location("streamify_loadtest_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def running_mesh(data_dir: Path, *, workers: int = 2) -> Iterator:
    """`streamify run` on free ports; yields the loadtest Mesh (gateway, data_dir, process)."""
    mesh = _loadtest().Mesh(data_dir, workers=workers).start()
    try:
        yield mesh
    finally:
        mesh.stop()  # SIGINT to the supervisor's PID; it stops its children by PID


def load_with_chaos(mesh, out: Path, *args: str) -> tuple[int, dict, str]:
    """Runs the load test (with --chaos) against `mesh`; returns (exit code, summary, output)."""
    command = [
        sys.executable,
        str(RUN_PY),
        "--gateway",
        mesh.gateway,
        "--data-dir",
        str(mesh.data_dir),
        "--mesh-pid",
        str(mesh.process.pid),
        "--chaos",
        "--out",
        str(out),
        *args,
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    output = done.stdout + done.stderr
    summary_file = out / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    return done.returncode, summary, output
