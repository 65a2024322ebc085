"""Development keys of embedded mode, kept in the data dir so every local process shares them.

Each file is created once (0600) by whichever process needs it first: a random value is written
to a private temporary file, then hard-linked into place. The link is atomic and fails when
another process won the race, so all processes end up reading the same key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from streamify.core.errors import ConfigurationError
from streamify.core.logs import get_logger

__all__ = ["load_or_create", "warn_once"]

log = get_logger(__name__)
_warned: set[Path] = set()


def load_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The contents of `path` (stripped), written from `make()` first if the file is missing."""
    for _ in range(50):
        try:
            data = path.read_bytes().strip()
        except FileNotFoundError:
            data = b""
        if data:
            return data
        if not path.exists():
            _create(path, make())
            continue
        time.sleep(0.01)  # another process is writing it (should not happen: link is atomic)
    raise ConfigurationError(f"development key file {path} exists but is empty; delete it")


def warn_once(path: Path, what: str, instead: str) -> None:
    """Log, once per process and file, that a development key is in use."""
    resolved = path.resolve()
    if resolved not in _warned:
        _warned.add(resolved)
        log.warning(
            "using the DEVELOPMENT %s in %s (embedded mode); set %s for anything but local use",
            what,
            resolved,
            instead,
        )


def _create(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.strip() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
