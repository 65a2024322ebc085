"""The resume state: which upload each source file went to, in one small JSON file per source
file (keyed by its absolute path, size and mtime) under $STREAMIFY_UPLOAD_STATE_DIR or the user's
cache directory, and the request id that lets a re-run find its upload again. When it is
dropped (the upload is complete, the file changed, the upload is gone or was aborted) the
`Uploader` (transport) decides, since that takes asking the service."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path


def file_key(path: Path, size: int, mtime_ns: int) -> str:
    """Identity of a source file's content as far as resuming is concerned."""
    raw = f"{Path(path).absolute()}\0{size}\0{mtime_ns}".encode()
    return hashlib.sha256(raw).hexdigest()


def request_id_for(key: str, generation: int) -> str:
    """CreateUpload's idempotency key: the same file gives the same key (so a re-run finds its
    upload instead of creating another), a new generation after an abandoned upload."""
    return f"cli-{key[:40]}-{generation}"


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("STREAMIFY_UPLOAD_STATE_DIR"):
        return Path(env["STREAMIFY_UPLOAD_STATE_DIR"])
    cache = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(cache) / "streamify" / "uploads"


@dataclass
class UploadStateFile:
    """What a re-run needs: which upload this file went to (and which request id made it)."""

    path: str
    size: int
    mtime_ns: int
    generation: int = 0
    request_id: str = ""
    upload: str = ""
    video: str = ""
    server: str = ""


class StateStore:
    """One JSON file per source file under `directory`, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path_for(self, key: str) -> Path:
        return self.directory / f"{key[:32]}.json"

    def load(self, key: str) -> UploadStateFile | None:
        return self.load_file(self.path_for(key))

    def save(self, key: str, state: UploadStateFile) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(asdict(state), f, indent=1)
            os.replace(tmp, self.path_for(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def remove(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    def others_for(self, path: str, key: str) -> list[tuple[Path, UploadStateFile]]:
        """State left by earlier versions of the same file (it changed since): stale."""
        stale = []
        for file in self.directory.glob("*.json") if self.directory.is_dir() else ():
            if file != self.path_for(key):
                other = self.load_file(file)
                if other is not None and other.path == path:
                    stale.append((file, other))
        return stale

    def load_file(self, file: Path) -> UploadStateFile | None:
        try:
            raw = json.loads(file.read_text())
            return UploadStateFile(
                **{k: raw[k] for k in UploadStateFile.__dataclass_fields__ if k in raw}
            )
        except (OSError, ValueError, TypeError):
            return None
