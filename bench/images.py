"""Image contents per role against the one image for everything: venv size and start-up time.

    .venv/bin/python bench/images.py [--runs 7] [--keep DIR]

For each runtime target of the Dockerfile, a fresh venv gets exactly what that target's build
stage installs (`pip install -c requirements.lock ...`, real wheels built from
services/*/pyproject.toml, not editable); a last venv gets every distribution, as the single
image had. Then, per role, the size of its venv (`du`, what the image layer would hold) and the
start-up of its process's imports (`python -c "import MODULE"`, the median of --runs, both venvs
alternating so that the machine's load hits them alike).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import log  # noqa: E402

from tests.contract.test_packaging import dockerfile_roles  # noqa: E402  # the Dockerfile, parsed once

# The module each role's main process imports first.
ENTRY = {
    "metadata": "streamify.metadata.app",
    "upload": "streamify.upload.app",
    "orchestrator": "streamify.transcode.orchestrator.app",
    "worker": "streamify.transcode.worker.main",
    "gateway": "streamify.gateway.authz",
    "seaweedfs": "streamify.core.storage",
}
EVERYTHING = (
    "./services/shared[sql,redis,s3]",
    "./services/metadata",
    "./services/upload",
    "./services/transcode[orchestrator,worker]",
    "./services/gateway",
    "./services/cli",
)


def make_venv(path: Path, args: tuple[str, ...]) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run(
        [str(path / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        + ["-c", "requirements.lock", *args],
        cwd=ROOT,
        check=True,
    )
    return time.monotonic() - started


def size_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[0])


def import_seconds(python: Path, module: str) -> float:
    started = time.perf_counter()
    subprocess.run([str(python), "-c", f"import {module}"], cwd="/", check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="build the venvs here and keep them")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="streamify-packaging-"))
    roles = dockerfile_roles()
    try:
        log(f"venvs in {base}")
        everything = base / "everything"
        if not (everything / "bin/python").exists():
            log(f"  everything: {make_venv(everything, EVERYTHING):.0f} s to build")
        for name, role in roles.items():
            if not (base / name / "bin/python").exists():
                log(f"  {name}: {make_venv(base / name, role.installs):.0f} s to build")
        all_mb = size_mb(everything)
        log("")
        log(f"{'role':<13} {'venv MB':>8} {'vs all':>7} {'import s':>9} {'all s':>7} {'ratio':>6}")
        for name in roles:
            own, alone = [], []
            for _ in range(args.runs):
                own.append(import_seconds(base / name / "bin/python", ENTRY[name]))
                alone.append(import_seconds(everything / "bin/python", ENTRY[name]))
            mb = size_mb(base / name)
            mine, theirs = statistics.median(own), statistics.median(alone)
            log(
                f"{name:<13} {mb:>8.0f} {mb / all_mb:>7.2f} {mine:>9.3f} {theirs:>7.3f}"
                f" {mine / theirs:>6.2f}"
            )
        log(f"{'everything':<13} {all_mb:>8.0f} {1:>7.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
