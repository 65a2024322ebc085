"""libav and OS errors become reasons for a person (media.source.translate, the one place),
every reason is documented (media.errors.DOCUMENTED, docs/operations.md), and the clock fixer
of media.timeline follows the ffmpeg CLI's rule."""

from __future__ import annotations

import errno
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import av.error
import pytest

from streamify.transcode.media.errors import DOCUMENTED, MediaError, Reason, documented_reason
from streamify.transcode.media.source import not_media, timecode, translate
from streamify.transcode.media.timeline import ClockFixer
from streamify.transcode.orchestrator.dag import failure_reason

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
RAW = (
    "Invalid argument",
    "Operation not permitted",
    "Invalid data found",
    "Errno",
    "End of file",
    "Input/output error",
    "Cannot allocate memory",
    "Decoder not found",
    "Server returned",
    "Connection reset",
    "Bug detected",
    "secret",
)


def libav(code: int) -> av.error.FFmpegError:
    """The exception PyAV raises for the libav error code ``code`` (negative AVERROR)."""
    try:
        av.error.err_check(code, "https://storage/bucket/key?X-Amz-Signature=secret")
    except av.error.FFmpegError as exc:
        return exc
    raise AssertionError(f"{code} is not an error")


def averror_tag(tag: bytes) -> int:
    return -int.from_bytes(tag, "little")


SOURCE = "https://storage/bucket/key?X-Amz-Signature=secret"

CASES = [
    # (exception, opening, reason, retryable, the message starts with)
    (
        libav(-errno.EINVAL),
        False,
        Reason.CORRUPT,
        False,
        "the file is damaged or uses a feature this service does not support",
    ),
    (
        libav(-errno.EPERM),
        False,
        Reason.CORRUPT,
        False,
        "the file is damaged or uses a feature this service does not support",
    ),
    (
        libav(averror_tag(b"INDA")),
        False,
        Reason.CORRUPT,
        False,
        "the file is truncated or corrupt: its data could not be decoded",
    ),
    (
        libav(averror_tag(b"EOF ")),
        False,
        Reason.CORRUPT,
        False,
        "the file is truncated or corrupt: it ended unexpectedly",
    ),
    (
        libav(averror_tag(b"BUG!")),
        False,
        Reason.CORRUPT,
        False,
        "the file is damaged or uses a feature",
    ),
    (
        libav(averror_tag(b"\xf8DEC")),
        False,
        Reason.UNSUPPORTED,
        False,
        "the file uses a format or codec this service cannot read",
    ),
    (libav(-errno.EIO), False, Reason.SOURCE_UNAVAILABLE, True, "an I/O error occurred"),
    (
        libav(-errno.ETIMEDOUT),
        False,
        Reason.SOURCE_UNAVAILABLE,
        True,
        "reading the source timed out or the connection dropped",
    ),
    (
        libav(-errno.ECONNRESET),
        False,
        Reason.SOURCE_UNAVAILABLE,
        True,
        "reading the source timed out or the connection dropped",
    ),
    (libav(-errno.ENOMEM), False, Reason.ENCODER_FAILED, True, "the worker ran out of memory"),
    (
        libav(averror_tag(b"\xf8404")),
        False,
        Reason.SOURCE_NOT_FOUND,
        False,
        "the source object does not exist (HTTP 404)",
    ),
    (
        libav(averror_tag(b"\xf8403")),
        False,
        Reason.SOURCE_UNAVAILABLE,
        True,
        "access to the source was refused",
    ),
    (
        libav(averror_tag(b"\xf85XX")),
        False,
        Reason.SOURCE_UNAVAILABLE,
        True,
        "the storage server failed while the source was read (HTTP 5xx)",
    ),
    (
        OSError(errno.EIO, "Input/output error"),
        False,
        Reason.SOURCE_UNAVAILABLE,
        True,
        "an I/O error occurred",
    ),
    (
        FileNotFoundError(errno.ENOENT, "No such file or directory"),
        False,
        Reason.SOURCE_NOT_FOUND,
        False,
        "the source file does not exist",
    ),
    (
        RuntimeError("[Errno 22] Invalid argument"),
        False,
        Reason.ENCODER_FAILED,
        True,
        "an internal error stopped the work on this video (RuntimeError)",
    ),
]


@pytest.mark.parametrize(
    ("exc", "opening", "reason", "retryable", "start"),
    CASES,
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None,
)
def test_libav_and_os_errors_become_documented_reasons_without_their_raw_text(
    exc, opening, reason, retryable, start
):
    error = translate(exc, SOURCE, opening=opening)
    assert (error.reason, error.retryable) == (reason, retryable), error
    assert error.message.startswith(start), error.message
    for raw in RAW:
        assert raw not in error.message, error.message
    assert documented_reason(error.message) == reason


def test_a_decoding_failure_says_where_in_the_video():
    error = translate(libav(averror_tag(b"INDA")), SOURCE, at=41.7)
    assert (
        error.message == "the file is truncated or corrupt: its data could not be decoded at 00:41"
    )
    assert translate(libav(-errno.EINVAL), SOURCE, at=3725).message.endswith("at 1:02:05")
    assert (timecode(0), timecode(59.99), timecode(61), timecode(-1)) == (
        "00:00",
        "00:59",
        "01:01",
        "00:00",
    )


def test_a_media_error_passes_unchanged():
    error = MediaError("the file is empty (0 bytes)", reason=Reason.EMPTY_FILE, retryable=False)
    assert translate(error, SOURCE) is error


@pytest.mark.parametrize(
    ("content", "start"),
    [
        (
            b"<!DOCTYPE html>\n<html><body>403 Forbidden</body></html>",
            "the file is not a video but a web page (HTML)",
        ),
        (
            "Notizen \u00fcber das Treffen\n- eins\n- zwei\n".encode() * 20,
            "the file is not a video but a text file",
        ),
        (
            b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00" + bytes(range(256)) * 8,
            "the file is not a playable video: it starts like an MP4/MOV file",
        ),
        (bytes(range(256)) * 16, "the file is not a video, or it is truncated or corrupt"),
    ],
    ids=["html", "text", "mp4-without-moov", "binary"],
)
def test_a_file_no_demuxer_reads_is_explained_from_its_first_bytes(tmp_path, content, start):
    path = tmp_path / "upload.mp4"
    path.write_bytes(content)
    error = not_media(str(path))
    assert error.reason == Reason.NOT_MEDIA and not error.retryable
    assert error.message.startswith(start), error.message
    assert documented_reason(error.message) == Reason.NOT_MEDIA
    # the real open fails the same way, through translate(opening=True)
    with pytest.raises(av.error.FFmpegError) as caught:
        av.open(str(path))
    assert translate(caught.value, str(path), opening=True).message == error.message


def test_documented_reason_reads_the_specifics_and_the_retry_wrapper():
    assert (
        documented_reason(
            "the video is 8192x4320, larger than the maximum 7680x4320 this service accepts"
        )
        == Reason.TOO_LARGE
    )
    assert documented_reason("the video is 1x1, too small to encode") == Reason.UNSUPPORTED
    assert documented_reason("encoding the 720p rendition failed (an internal error: X)") == (
        Reason.ENCODER_FAILED
    )
    retried = failure_reason(
        "chunk-0003", "reading the source timed out or the connection dropped", 3, True
    )
    assert retried.startswith("chunk-0003 failed 3 times; last error: ")
    assert documented_reason(retried) == Reason.SOURCE_UNAVAILABLE
    assert documented_reason("Invalid data found when processing input") is None
    assert documented_reason("the file could not be processed: Invalid argument") is None


def test_every_documented_sentence_is_in_the_operations_guide():
    text = DOCS.read_text()
    section = text[text.index("## Why a video failed") :]
    section = section[: section.index("\n## ", 4)]
    for reason, sentences in DOCUMENTED.items():
        assert f"`{reason}`" in section, reason
        for sentence in sentences:
            assert f'"{sentence}"' in section, sentence


# --- media.timeline: the ffmpeg CLI's clock correction -------------------------------------------


def fake_container(*, discontinuous: bool = True):
    flags = av.format.Flags.ts_discont.value if discontinuous else 0
    video = SimpleNamespace(
        index=0, type="video", average_rate=Fraction(25), guessed_rate=None, base_rate=None
    )
    audio = SimpleNamespace(index=1, type="audio")
    return SimpleNamespace(format=SimpleNamespace(flags=flags), streams=[video, audio])


def packet(stream, seconds: float, duration: float = 0.0):
    tb = Fraction(1, 90_000)
    ticks = round(seconds * 90_000)
    return SimpleNamespace(
        stream=stream, pts=ticks, dts=ticks, time_base=tb, duration=round(duration * 90_000)
    )


def times(fixer: ClockFixer, container, plan: list[tuple[int, float]]) -> list[float]:
    out = []
    for index, t in plan:
        p = fixer.fix(packet(container.streams[index], t, 0.04 if index == 0 else 0.021333))
        out.append(round(float(p.pts * p.time_base), 3))
    return out


def test_a_clock_that_restarts_continues_where_the_recording_stopped():
    container = fake_container()
    fixer = ClockFixer(container)
    # part one: 1.40 .. 3.40 s; part two starts again at 1.40 s (the sender's clock restarted)
    plan = [(0, 1.40), (1, 1.40), (0, 1.44), (0, 3.36), (1, 3.37), (0, 1.40), (1, 1.40), (0, 1.44)]
    assert times(fixer, container, plan) == [1.4, 1.4, 1.44, 3.36, 3.37, 3.4, 3.4, 3.44]
    assert fixer.jumps == 1


def test_a_jump_beyond_10_s_is_removed_a_shorter_gap_is_kept():
    container = fake_container()
    fixer = ClockFixer(container)
    plan = [(0, 0.0), (0, 0.04), (0, 3.08), (0, 3.12), (0, 3603.16), (0, 3603.2)]
    assert times(fixer, container, plan) == [0.0, 0.04, 3.08, 3.12, 3.16, 3.2]
    assert fixer.jumps == 1


def test_formats_with_a_reliable_clock_are_left_alone():
    container = fake_container(discontinuous=False)
    fixer = ClockFixer(container)
    assert not fixer.enabled
    assert times(fixer, container, [(0, 5.0), (0, 1.0), (0, 9000.0)]) == [5.0, 1.0, 9000.0]
