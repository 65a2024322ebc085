"""The one error type of the media package: a message for a person, a reason code, retryable."""

from __future__ import annotations


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
