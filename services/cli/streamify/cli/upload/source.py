"""The file to upload: checked before anything is contacted (it exists, is readable, not
empty, a video) and its content type, guessed from its name."""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass, field
from pathlib import Path

from streamify.cli.upload.errors import UsageError
from streamify.cli.upload.resume import file_key

FALLBACK_CONTENT_TYPE = "video/mp4"

# Python's built-in table only (not /etc/mime.types, which differs between machines and maps
# .ts to Qt Linguist), plus the video containers it lacks.
_MIME = mimetypes.MimeTypes()
for _ext, _type in {
    ".mkv": "video/x-matroska",
    ".ts": "video/mp2t",
    ".m2ts": "video/mp2t",
    ".mts": "video/mp2t",
    ".m4v": "video/x-m4v",
    ".3gp": "video/3gpp",
    ".3g2": "video/3gpp2",
    ".ogv": "video/ogg",
    ".flv": "video/x-flv",
    ".wmv": "video/x-ms-wmv",
    ".y4m": "video/x-yuv4mpeg",
}.items():
    _MIME.add_type(_type, _ext)


def guess_content_type(path: Path) -> str:
    """`video/*` from the file name; unknown extensions are sent as video/mp4 (the transcoder
    probes the bytes anyway); a known non-video type is a UsageError."""
    guessed, _ = _MIME.guess_type(path.name, strict=False)
    if guessed is None or guessed == "application/octet-stream":
        return FALLBACK_CONTENT_TYPE
    guessed = guessed.lower()
    if not guessed.startswith("video/"):
        raise UsageError(
            f"{path.name} looks like {guessed}, not a video; only video files can be uploaded"
        )
    return guessed


@dataclass
class _Source:
    path: Path
    size: int
    mtime_ns: int
    content_type: str
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = file_key(self.path, self.size, self.mtime_ns)


def inspect_file(path: Path) -> _Source:
    """Checks the file before anything is contacted: it exists, is readable, not empty, a video."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    if not path.is_file():
        raise UsageError(f"{path}: not a regular file")
    if st.st_size == 0:
        raise UsageError(f"{path}: the file is empty (0 bytes); there is nothing to upload")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{path}: permission denied")
    return _Source(path, st.st_size, st.st_mtime_ns, guess_content_type(path))
