"""The one error type of the media package: a message for a person, a reason code, retryable.

Every message a media task can end with starts with one of the documented sentences of
:data:`DOCUMENTED` (docs/operations.md, "Why a video failed", lists them): a test keeps the
two in step, and the corpus test checks every FAILED job against them. libav and OS error
texts never reach a message (``media.source.translate`` maps them).
"""

from __future__ import annotations

import re


class Reason:
    """Stable machine-readable reason codes carried by :class:`MediaError`."""

    EMPTY_FILE = "empty_file"
    NOT_MEDIA = "not_media"
    NO_VIDEO_STREAM = "no_video_stream"
    NO_AUDIO_STREAM = "no_audio_stream"
    CORRUPT = "corrupt"
    UNSUPPORTED = "unsupported"
    TOO_LARGE = "too_large"
    SOURCE_NOT_FOUND = "source_not_found"
    SOURCE_UNAVAILABLE = "source_unavailable"
    ENCODER_FAILED = "encoder_failed"


class MediaError(Exception):
    """A media task failed for a reason a person can understand.

    ``retryable`` is False when running the same task again cannot help (the source is not a
    video, it is corrupt, too large...), True for transient trouble (network, storage, a
    pre-signed URL that expired).
    """

    def __init__(self, message: str, *, reason: str, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"MediaError({self.message!r}, reason={self.reason!r}, retryable={self.retryable})"


# reason code -> the sentences its messages start with (the rest of a message adds specifics:
# sizes, a position "at 00:41", the formats found).
DOCUMENTED: dict[str, tuple[str, ...]] = {
    Reason.EMPTY_FILE: ("the file is empty",),
    Reason.NOT_MEDIA: (
        "the file is not a video, or it is truncated or corrupt",
        "the file is not a video but a web page",
        "the file is not a video but a text file",
        "the file is not a video but a playlist",
        "the file is not a playable video: it starts like an MP4/MOV file",
    ),
    Reason.NO_VIDEO_STREAM: ("the file is not a video: no video stream found",),
    Reason.NO_AUDIO_STREAM: ("the file has no audio stream",),
    Reason.CORRUPT: (
        "the file is truncated or corrupt",
        "the file is damaged or uses a feature this service does not support",
        "the video has no duration",
        "the file's header is wrong or the file is truncated",
    ),
    Reason.UNSUPPORTED: (
        "the file uses a format or codec this service cannot read",
        "the video is too small to encode",
    ),
    Reason.TOO_LARGE: (
        "the video is larger than the maximum",
        "the video is too long",
        "the video has too many frames",
        "the video needs too many chunk tasks",
    ),
    Reason.SOURCE_NOT_FOUND: ("the source file does not exist", "the source object does not exist"),
    Reason.SOURCE_UNAVAILABLE: (
        "access to the source was refused",
        "the storage server failed while the source was read",
        "reading the source timed out or the connection dropped",
        "an I/O error occurred while the source was read",
    ),
    Reason.ENCODER_FAILED: (
        "the worker ran out of memory",
        "an internal error stopped the work on this video",
        "encoding the rendition failed",
        "the muxer wrote unexpected segments",
    ),
}

# A retryable failure that used its last attempt is reported by the orchestrator as
# "<task> failed N times; last error: <message>" (streamify.transcode.orchestrator.dag.failure_reason).
_RETRIED = re.compile(r"^.+ failed \d+ times; last error: ")
# Specifics inside a documented sentence: "the video is 8192x4320, larger than ...",
# "encoding the 720p rendition failed", "rendition 720p, chunk 3: the muxer wrote ...".
_SPECIFICS = (
    (re.compile(r"^the video is \d+x\d+, "), "the video is "),
    (re.compile(r"^encoding the \S+ rendition failed"), "encoding the rendition failed"),
    (
        re.compile(r"^rendition \S+, chunk \d+: the muxer wrote .*"),
        "the muxer wrote unexpected segments",
    ),
)


def documented_reason(message: str) -> str | None:
    """The reason code whose documented sentence ``message`` starts with, else None."""
    text = _RETRIED.sub("", message.strip(), count=1)
    for pattern, replacement in _SPECIFICS:
        text = pattern.sub(replacement, text, count=1)
    for reason, sentences in DOCUMENTED.items():
        if any(text.startswith(sentence) for sentence in sentences):
            return reason
    return None
