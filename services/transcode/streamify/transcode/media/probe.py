"""Read a source's container and streams: what the planner needs, or a clear MediaError."""

from __future__ import annotations

import av
import av.container
import av.stream

from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.media.models import AudioInfo, MediaInfo, VideoInfo
from streamify.transcode.media.source import open_input, translate

# Packets to read at most when the container has no duration and we estimate it (a stream of
# unknown length is read to the end: bounded by the file, never by time).
_MAX_ESTIMATE_PACKETS = 2_000_000


def probe(source: str) -> MediaInfo:
    """Probe ``source`` (local path or http(s) URL).

    Decodes the first video frame: that proves the video is decodable and gives the display
    rotation. Raises :class:`MediaError` for empty, unrecognisable, truncated or video-less
    files.
    """
    with open_input(source) as container:
        try:
            return _probe(container)
        except MediaError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise translate(exc, source) from exc


def _probe(container: av.container.InputContainer) -> MediaInfo:
    vstream = first_video_stream(container)
    if vstream is None:
        kinds = sorted({s.type for s in container.streams})
        found = f" (it has {', '.join(kinds)} streams only)" if kinds else ""
        raise MediaError(
            f"the file is not a video: no video stream found{found}",
            reason=Reason.NO_VIDEO_STREAM,
            retryable=False,
        )
    _check_not_truncated(container, vstream)
    astream = container.streams.audio[0] if container.streams.audio else None

    cc = vstream.codec_context
    rotation, width, height, pix_fmt = _first_frame_facts(container, vstream)
    rate = vstream.average_rate or vstream.guessed_rate or vstream.base_rate
    sar = vstream.sample_aspect_ratio
    video = VideoInfo(
        codec=cc.name,
        width=width or cc.width,
        height=height or cc.height,
        rotation_degrees=rotation,
        frame_rate=float(rate) if rate else 0.0,
        pixel_format=pix_fmt or (cc.pix_fmt or ""),
        frame_count=int(vstream.frames or 0),
        sample_aspect_ratio=float(sar) if sar else 1.0,
        duration=_stream_duration(vstream),
    )
    audio = None
    if astream is not None:
        acc = astream.codec_context
        audio = AudioInfo(
            codec=acc.name,
            sample_rate=int(acc.sample_rate or 0),
            channels=int(acc.channels or (acc.layout.nb_channels if acc.layout else 0)),
        )
    duration = _duration(container)
    if duration <= 0 and video.frame_rate > 0:
        duration = 1 / video.frame_rate  # a single picture
    return MediaInfo(
        format=container.format.name,
        duration=duration,
        video=video,
        audio=audio,
        size_bytes=max(0, int(container.size or 0)),
    )


def first_video_stream(
    container: av.container.InputContainer,
) -> av.video.stream.VideoStream | None:
    """The first real video stream: cover art in audio files (attached pictures) is not video."""
    for stream in container.streams.video:
        if stream.disposition & av.stream.Disposition.attached_pic:
            continue
        return stream
    return None


def clockwise_rotation(frame_rotation: float | int | None) -> int:
    """PyAV's ``VideoFrame.rotation`` (counter-clockwise, -180..180) -> clockwise 0/90/180/270."""
    if not frame_rotation:
        return 0
    return int(round(-float(frame_rotation) / 90.0)) * 90 % 360


def _first_frame_facts(
    container: av.container.InputContainer, vstream: av.video.stream.VideoStream
) -> tuple[int, int, int, str]:
    for frame in container.decode(vstream):
        return clockwise_rotation(frame.rotation), frame.width, frame.height, frame.format.name
    raise MediaError(
        "the file is truncated or corrupt: its video stream has no decodable frame",
        reason=Reason.CORRUPT,
        retryable=False,
    )


def _check_not_truncated(
    container: av.container.InputContainer, vstream: av.video.stream.VideoStream
) -> None:
    """A container index (MP4 moov) pointing past the end of the file means a cut-off upload."""
    size = container.size or 0
    if size <= 0:
        return
    try:
        entries = vstream.index_entries
        count = len(entries)
        if count == 0:
            return
        last = entries[count - 1]
    except Exception:  # noqa: BLE001 - index not available for this demuxer
        return
    end = last.pos + last.size
    if last.pos >= 0 and end > size:
        raise MediaError(
            f"the file is truncated or corrupt: it has {size} bytes but its index refers to "
            f"data up to byte {end} (was the upload cut short?)",
            reason=Reason.CORRUPT,
            retryable=False,
        )


def _stream_duration(stream: av.stream.Stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return 0.0


def _duration(container: av.container.InputContainer) -> float:
    if container.duration and container.duration > 0:
        return container.duration / 1_000_000
    best = max((_stream_duration(s) for s in container.streams), default=0.0)
    if best > 0:
        return best
    return _estimate_duration(container)


def _estimate_duration(container: av.container.InputContainer) -> float:
    """No duration in the header (raw streams, some WebM/MKV): read packet timestamps."""
    origin = container.start_time / 1_000_000 if container.start_time is not None else None
    end = 0.0
    first: float | None = None
    container.seek(0)
    for n, packet in enumerate(container.demux()):
        if n >= _MAX_ESTIMATE_PACKETS:
            break
        if packet.pts is None or packet.time_base is None:
            continue
        t = float(packet.pts * packet.time_base)
        if first is None or t < first:
            first = t
        dur = float(packet.duration * packet.time_base) if packet.duration else 0.0
        end = max(end, t + dur)
    start = origin if origin is not None else (first or 0.0)
    return max(0.0, end - start)
