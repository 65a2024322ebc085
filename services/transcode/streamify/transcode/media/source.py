"""Open a source (local path or http(s) URL such as a pre-signed S3 GET) and translate errors."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

import av
import av.container

from streamify.transcode.media.errors import MediaError, Reason

# Seconds to wait for the source to open / for any read to return before giving up.
OPEN_TIMEOUT = 30.0
READ_TIMEOUT = 60.0

# For http(s): FFmpeg reads with Range requests (seeks become new requests) and reconnects on
# dropped connections.
_HTTP_OPTIONS = {
    "reconnect": "1",
    "reconnect_on_network_error": "1",
    "reconnect_delay_max": "10",
    "seekable": "1",
}


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def describe(source: str) -> str:
    """The source for messages, without the query string (pre-signed URLs carry credentials)."""
    return source.split("?", 1)[0] if is_url(source) else source


@contextmanager
def open_input(source: str) -> Iterator[av.container.InputContainer]:
    """Open ``source`` for reading; every failure is a :class:`MediaError`."""
    if not is_url(source):
        try:
            size = os.path.getsize(source)
        except FileNotFoundError:
            raise MediaError(
                f"the source file does not exist: {source}",
                reason=Reason.SOURCE_NOT_FOUND,
                retryable=False,
            ) from None
        if size == 0:
            raise MediaError(
                "the file is empty (0 bytes)", reason=Reason.EMPTY_FILE, retryable=False
            )
    options = dict(_HTTP_OPTIONS) if is_url(source) else {}
    try:
        container = av.open(source, mode="r", options=options, timeout=(OPEN_TIMEOUT, READ_TIMEOUT))
    except Exception as exc:  # noqa: BLE001 - translated below
        raise translate(exc, source, opening=True) from exc
    try:
        if container.size == 0:
            raise MediaError(
                "the file is empty (0 bytes)", reason=Reason.EMPTY_FILE, retryable=False
            )
        yield container
    finally:
        container.close()


def origin_seconds(container: av.container.InputContainer) -> float:
    """Source time zero: the container's start time (what ffmpeg subtracts by default)."""
    start = container.start_time
    return start / 1_000_000 if start is not None else 0.0


def translate(exc: BaseException, source: str, *, opening: bool = False) -> MediaError:
    """Map a PyAV/OS exception to a :class:`MediaError` with a message for a person."""
    if isinstance(exc, MediaError):
        return exc
    where = describe(source)
    if isinstance(exc, av.error.HTTPNotFoundError):
        return MediaError(
            f"the source object does not exist (HTTP 404): {where}",
            reason=Reason.SOURCE_NOT_FOUND,
            retryable=False,
        )
    if isinstance(exc, (av.error.HTTPForbiddenError, av.error.HTTPUnauthorizedError)):
        return MediaError(
            f"access to the source was refused (the signed URL may have expired): {where}",
            reason=Reason.SOURCE_UNAVAILABLE,
            retryable=True,
        )
    if isinstance(exc, av.error.HTTPError):
        return MediaError(
            f"the storage server failed while reading the source: {exc}",
            reason=Reason.SOURCE_UNAVAILABLE,
            retryable=True,
        )
    if isinstance(exc, FileNotFoundError):
        return MediaError(
            f"the source file does not exist: {where}",
            reason=Reason.SOURCE_NOT_FOUND,
            retryable=False,
        )
    if isinstance(
        exc,
        (av.error.DecoderNotFoundError, av.error.DemuxerNotFoundError, av.error.PatchWelcomeError),
    ):
        return MediaError(
            f"the file uses a format or codec this service cannot read: {_detail(exc)}",
            reason=Reason.UNSUPPORTED,
            retryable=False,
        )
    if isinstance(exc, av.error.InvalidDataError):
        if opening:
            return MediaError(
                "the file is not a video, or it is truncated or corrupt: its container "
                f"could not be read ({_detail(exc)})",
                reason=Reason.NOT_MEDIA,
                retryable=False,
            )
        return MediaError(
            f"the file is truncated or corrupt: {_detail(exc)}",
            reason=Reason.CORRUPT,
            retryable=False,
        )
    if isinstance(exc, av.error.EOFError):
        return MediaError(
            "the file is truncated or corrupt: it ended unexpectedly",
            reason=Reason.CORRUPT,
            retryable=False,
        )
    if isinstance(exc, (TimeoutError, ConnectionError, av.error.ExitError)):
        return MediaError(
            f"reading the source timed out or the connection dropped: {_detail(exc)}",
            reason=Reason.SOURCE_UNAVAILABLE,
            retryable=True,
        )
    if isinstance(exc, MemoryError):
        return MediaError(
            "the worker ran out of memory", reason=Reason.ENCODER_FAILED, retryable=True
        )
    if isinstance(exc, OSError) and exc.errno in (errno.EIO, errno.ENOSPC, errno.ETIMEDOUT):
        return MediaError(
            f"an I/O error occurred: {_detail(exc)}",
            reason=Reason.SOURCE_UNAVAILABLE,
            retryable=True,
        )
    if isinstance(exc, av.error.FFmpegError):
        return MediaError(
            f"the file could not be processed: {_detail(exc)}",
            reason=Reason.CORRUPT,
            retryable=False,
        )
    return MediaError(
        f"unexpected failure while processing the source: {type(exc).__name__}: {exc}",
        reason=Reason.ENCODER_FAILED,
        retryable=True,
    )


def _detail(exc: BaseException) -> str:
    if isinstance(exc, av.error.FFmpegError):
        # str() of PyAV errors includes the (possibly signed) URL; keep only the message.
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__
