"""What can go wrong in an upload: the process exit codes, and the errors that carry them."""

from __future__ import annotations

import grpc

from streamify.core.errors import details_of
from streamify.v1.video_pb2 import Video

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_TRANSCODE_FAILED",
    "EXIT_UPLOAD_FAILED",
    "EXIT_USAGE",
    "ServerRefused",
    "TranscodeFailed",
    "TransferFailed",
    "UploadError",
    "UsageError",
]

EXIT_OK = 0
EXIT_UPLOAD_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_TRANSCODE_FAILED = 4
EXIT_INTERRUPTED = 130


class UploadError(Exception):
    """Something the user must hear about; `exit_code` is what the CLI exits with."""

    exit_code = EXIT_UPLOAD_FAILED


class UsageError(UploadError):
    """Bad input, found before (or instead of) contacting the server."""

    exit_code = EXIT_USAGE


class TransferFailed(UploadError):
    """Storage or the network kept failing after the retries."""

    exit_code = EXIT_UPLOAD_FAILED


class TranscodeFailed(UploadError):
    """The video was uploaded but transcoding FAILED (only with --wait)."""

    exit_code = EXIT_TRANSCODE_FAILED

    def __init__(self, video: Video) -> None:
        super().__init__(
            f"transcoding {video.name} failed: {video.failure_reason or 'no reason given'}"
        )
        self.video = video


class ServerRefused(UploadError):
    """A gRPC call failed with a status that retrying will not fix."""

    exit_code = EXIT_REFUSED

    def __init__(self, method: str, error: grpc.RpcError) -> None:
        self.method = method
        self.code: grpc.StatusCode = error.code()
        self.message: str = error.details() or ""
        info, bad = details_of(error)
        self.reason = info.reason if info else ""
        self.metadata = dict(info.metadata) if info else {}
        self.violations = [(v.field, v.description) for v in bad.field_violations] if bad else []
        super().__init__(self.describe())

    def describe(self) -> str:
        text = f"the server refused {self.method}: {self.code.name}: {self.message}"
        if self.reason:
            text += f" [{self.reason}]"
        for name, description in self.violations:
            text += f"\n  {name}: {description}"
        return text


class _Cancelled(Exception):
    """Another part failed (or the user interrupted): stop sending."""


class _UploadGone(Exception):
    """Storage no longer knows the multipart upload (aborted behind our back): start over."""
