"""Open a source (local path or http(s) URL such as a pre-signed S3 GET) and translate errors."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction

import av
import av.container
import av.stream

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


# The demuxers a source may be read with (FFmpeg's names): video containers and raw video
# streams, and audio containers so that an audio-only file is told it has no picture. Nothing
# that makes FFmpeg open further URLs or files named inside the upload (hls, dash, concat,
# image2 patterns, tee...): a 200-byte playlist could otherwise make the worker fetch internal
# addresses or local files and encode what it read into the "video".
SOURCE_DEMUXERS = (
    "mov,mp4,matroska,webm,avi,mpegts,mpeg,mpegvideo,flv,ogg,mxf,asf,nut,ivf,"
    "yuv4mpegpipe,h264,hevc,m4v,wav,mp3,aac,flac"
)
# The only protocols FFmpeg may use for a source: the pre-signed URL, or a local path.
_URL_PROTOCOLS = "http,https,tcp,tls"
_FILE_PROTOCOLS = "file"


def _read_options(source: str) -> dict[str, str]:
    """libavformat options for reading ``source`` (HTTP reconnects, the protocol whitelist)."""
    if is_url(source):
        return {**_HTTP_OPTIONS, "protocol_whitelist": _URL_PROTOCOLS}
    return {"protocol_whitelist": _FILE_PROTOCOLS}


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
    options = {**_read_options(source), "format_whitelist": SOURCE_DEMUXERS}
    try:
        container = av.open(source, mode="r", options=options, timeout=(OPEN_TIMEOUT, READ_TIMEOUT))
    except Exception as exc:
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


def time_base(stream: av.stream.Stream) -> Fraction:
    """A demuxed stream's time base: libavformat gives every stream it opens one (90 kHz until
    the demuxer sets its own). PyAV's type allows None, for a stream it cannot read one from."""
    tb = stream.time_base
    assert tb is not None, f"stream {stream.index} has no time base"
    return tb


def translate(
    exc: BaseException, source: str, *, opening: bool = False, at: float | None = None
) -> MediaError:
    """Map a PyAV/OS exception to a :class:`MediaError` with a message for a person.

    The ONE place where libav and OS errors become reasons: a message never carries libav's or
    the OS's own text ("Invalid data found when processing input", "Invalid argument",
    "[Errno 1] Operation not permitted"...), which says nothing to the person who uploaded the
    file; the worker's log keeps the original exception. ``at`` (seconds of source time) names
    where in the video a decoding failure happened ("... at 00:41"). ``opening`` marks a
    failure to open the container, explained from the file's first bytes when possible.
    """
    if isinstance(exc, MediaError):
        return exc
    where = describe(source)
    position = f" at {timecode(at)}" if at is not None else ""
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
            f"the storage server failed while the source was read (HTTP {_http_status(exc)})",
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
            "the file uses a format or codec this service cannot read",
            reason=Reason.UNSUPPORTED,
            retryable=False,
        )
    # Opening: no allowed demuxer could read it (EINVAL when only a refused one could).
    if opening and isinstance(
        exc, (av.error.InvalidDataError, av.error.EOFError, av.error.ArgumentError)
    ):
        return not_media(source)
    if isinstance(exc, av.error.InvalidDataError):
        return MediaError(
            f"the file is truncated or corrupt: its data could not be decoded{position}",
            reason=Reason.CORRUPT,
            retryable=False,
        )
    if isinstance(exc, av.error.EOFError):
        return MediaError(
            f"the file is truncated or corrupt: it ended unexpectedly{position}",
            reason=Reason.CORRUPT,
            retryable=False,
        )
    if isinstance(exc, (TimeoutError, ConnectionError, av.error.ExitError)):
        return MediaError(
            "reading the source timed out or the connection dropped",
            reason=Reason.SOURCE_UNAVAILABLE,
            retryable=True,
        )
    if isinstance(exc, MemoryError):
        return MediaError(
            "the worker ran out of memory", reason=Reason.ENCODER_FAILED, retryable=True
        )
    if isinstance(exc, av.error.FFmpegError) and exc.errno in _TRANSIENT_ERRNOS:
        return MediaError(
            "an I/O error occurred while the source was read",
            reason=Reason.SOURCE_UNAVAILABLE,
            retryable=True,
        )
    if (
        isinstance(exc, OSError)
        and not isinstance(exc, av.error.FFmpegError)
        and exc.errno in _TRANSIENT_ERRNOS
    ):
        return MediaError(
            "an I/O error occurred while the source was read",
            reason=Reason.SOURCE_UNAVAILABLE,
            retryable=True,
        )
    if isinstance(exc, av.error.FFmpegError):
        # EINVAL, EPERM, ENOSYS, AVERROR_BUG... from a demuxer or decoder: the data is
        # damaged or uses a feature libav refuses.
        return MediaError(
            f"the file is damaged or uses a feature this service does not support: it could "
            f"not be decoded{position}",
            reason=Reason.CORRUPT,
            retryable=False,
        )
    return MediaError(
        f"an internal error stopped the work on this video ({type(exc).__name__}); the "
        "worker's log has the details",
        reason=Reason.ENCODER_FAILED,
        retryable=True,
    )


_TRANSIENT_ERRNOS = frozenset(
    {
        errno.EIO,
        errno.ENOSPC,
        errno.ETIMEDOUT,
        errno.ECONNRESET,
        errno.ECONNREFUSED,
        errno.EPIPE,
        errno.EAGAIN,
    }
)


def timecode(seconds: float) -> str:
    """``41.7`` -> ``00:41``, ``3725`` -> ``1:02:05`` (how players show a position)."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _http_status(exc: av.error.HTTPError) -> str:
    name = type(exc).__name__  # HTTPBadRequestError, HTTPOtherServerError, ...
    return {
        "HTTPBadRequestError": "400",
        "HTTPTooManyRequestsError": "429",
        "HTTPClientError": "4xx",
        "HTTPOtherClientError": "4xx",
        "HTTPServerError": "5xx",
    }.get(name, "error")


# --- a file no demuxer could open: say what it is instead --------------------------------------

SNIFF_BYTES = 4096


def sniff(source: str) -> bytes:
    """The first bytes of ``source`` (b"" if they cannot be read), read through libavformat's
    raw ``data`` demuxer so URLs work the same way as for the real open."""
    options = _read_options(source)
    try:
        with av.open(
            source, mode="r", format="data", options=options, timeout=(OPEN_TIMEOUT, READ_TIMEOUT)
        ) as container:
            data = b""
            for packet in container.demux():
                data += bytes(packet)
                if len(data) >= SNIFF_BYTES or packet.size == 0:
                    break
            return data[:SNIFF_BYTES]
    except Exception:  # noqa: BLE001 - only used to word a message better
        return b""


def not_media(source: str) -> MediaError:
    """No container format could read the file: the most specific explanation its first bytes
    allow (a web page, a text file, an MP4 without its index...)."""
    head = sniff(source)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        message = (
            "the file is not a video but a web page (HTML): the link it was downloaded "
            "from probably returned an error page"
        )
    elif text.startswith(b"#extm3u"):
        message = (
            "the file is not a video but a playlist (HLS .m3u8) that points to other files: "
            "upload the video itself"
        )
    elif head and _looks_like_text(head):
        message = "the file is not a video but a text file"
    elif head[4:8] == b"ftyp":
        message = (
            "the file is not a playable video: it starts like an MP4/MOV file but its "
            "index (the moov box) is missing or damaged; the recording or the upload "
            "was probably cut short"
        )
    else:
        message = (
            "the file is not a video, or it is truncated or corrupt: no known video "
            "format could read it"
        )
    return MediaError(message, reason=Reason.NOT_MEDIA, retryable=False)


def _looks_like_text(data: bytes) -> bool:
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the end of the sample is still text.
        try:
            decoded = data[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in decoded)
    return printable >= 0.97 * max(1, len(decoded))
