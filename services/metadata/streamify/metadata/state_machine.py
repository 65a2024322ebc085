"""The video lifecycle: which status may follow which.

UPLOADING -> UPLOADED -> PROCESSING -> READY, FAILED from any non-terminal status, and
FAILED -> UPLOADED/PROCESSING when a failed transcode is retried. Repeating the current
status is always accepted (retries of a status report are idempotent; PROCESSING repeats
carry progress).
"""

from __future__ import annotations

from streamify.v1.video_pb2 import VideoStatus

UPLOADING = VideoStatus.VIDEO_STATUS_UPLOADING
UPLOADED = VideoStatus.VIDEO_STATUS_UPLOADED
PROCESSING = VideoStatus.VIDEO_STATUS_PROCESSING
READY = VideoStatus.VIDEO_STATUS_READY
FAILED = VideoStatus.VIDEO_STATUS_FAILED

TERMINAL = frozenset({READY, FAILED})

_NEXT: dict[int, frozenset[int]] = {
    UPLOADING: frozenset({UPLOADED, FAILED}),
    UPLOADED: frozenset({PROCESSING, FAILED}),
    PROCESSING: frozenset({READY, FAILED}),
    READY: frozenset(),
    FAILED: frozenset({UPLOADED, PROCESSING}),
}


# The moves each service identity reports (streamify.core.token_keys), as (the statuses it
# moves a video out of, the statuses it moves one to): Upload says when an upload's bytes are in
# (or never will be), Transcode how processing goes. Repeating the current status is a retry.
# (The `operator` identity may make any move, the service checks that.) A stolen Upload token
# cannot mark a video READY or fail one that is being processed.
MOVES_BY: dict[str, tuple[frozenset[int], frozenset[int]]] = {
    "upload": (frozenset({UPLOADING}), frozenset({UPLOADED, FAILED})),
    "transcode": (
        frozenset({UPLOADED, PROCESSING, FAILED}),
        frozenset({PROCESSING, READY, FAILED}),
    ),
}


def may_move(identity: str, current: int, new: int) -> bool:
    out_of, to = MOVES_BY.get(identity, (frozenset(), frozenset()))
    return new in to and (current in out_of or current == new)


def status_label(status: int) -> str:
    return (
        VideoStatus.Name(VideoStatus.ValueType(status)).removeprefix("VIDEO_STATUS_")
        if status in _NEXT
        else str(status)
    )


def is_allowed(current: int, new: int) -> bool:
    return new == current or new in _NEXT.get(current, frozenset())
