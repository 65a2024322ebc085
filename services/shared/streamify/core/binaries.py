"""Where a tool that a wheel installs (envoy, weed, grpcurl, kubectl...) is found."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def installed_binary(name: str) -> str | None:
    """`name` next to this interpreter (the venv's bin/, where wheels put their binaries), else
    the one on PATH, else None."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)
