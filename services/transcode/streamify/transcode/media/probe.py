"""Read a source's container and streams: what the planner needs, or a clear MediaError."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import av
import av.container
import av.stream

from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.media.models import AudioInfo, MediaInfo, VideoInfo
from streamify.transcode.media.source import open_input, origin_seconds, time_base, translate
from streamify.transcode.media.timeline import ClockFixer, has_discontinuous_clock

# Packets to read at most when the container has no duration and we estimate it (a stream of
# unknown length is read to the end: bounded by the file, never by time).
_MAX_ESTIMATE_PACKETS = 2_000_000
# The end check reads the packets of this many seconds before the declared end.
_TAIL_SECONDS = 3.0
# A stream whose packets end this much before the header's duration was cut short.
_TRUNCATION_SLACK = 0.5


def probe(source: str) -> MediaInfo:
    """Probe ``source`` (local path or http(s) URL).

    Decodes the first video frame: that proves the video is decodable and gives the display
    rotation. A file cut short (its header or index promises more than the data holds) gets
    the duration of the data that is there, as the ffmpeg CLI decodes it; a source whose
    clock jumps (MPEG-TS/PS, Ogg) gets its corrected duration and ``clock_jumps``. Raises
    :class:`MediaError` for empty, unrecognisable or video-less files and files without one
    decodable video frame.
    """
    with open_input(source) as container:
        try:
            info = _probe(container)
        except MediaError:
            raise
        except Exception as exc:
            raise translate(exc, source) from exc
        discontinuous = has_discontinuous_clock(container)
    if discontinuous:
        # A fresh read from the start: after a clock jump, seeking back by time is unreliable.
        with open_input(source) as container:
            try:
                info = _with_continuous_clock(container, info)
            except MediaError:
                raise
            except Exception as exc:
                raise translate(exc, source) from exc
    return info


def _not_a_video(container: av.container.InputContainer) -> MediaError:
    kinds = {s.type for s in container.streams}
    pictures = sum(
        1 for s in container.streams.video if s.disposition & av.stream.Disposition.attached_pic
    )
    parts = [k for k in ("audio", "subtitle", "data") if k in kinds]
    found = ""
    if pictures:
        found = f" (it has {' and '.join(parts) or 'no'} streams and a cover picture only)"
    elif parts:
        found = f" (it has {', '.join(parts)} streams only)"
    return MediaError(
        f"the file is not a video: no video stream found{found}",
        reason=Reason.NO_VIDEO_STREAM,
        retryable=False,
    )


def _probe(container: av.container.InputContainer) -> MediaInfo:
    vstream = first_video_stream(container)
    if vstream is None:
        raise _not_a_video(container)
    astream = container.streams.audio[0] if container.streams.audio else None
    # Where the data of a file cut short ends, from its index (MP4), before anything seeks.
    indexed_ends = _indexed_ends(container, [s for s in (vstream, astream) if s is not None])

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
    if indexed_ends is None and duration > 0 and not has_discontinuous_clock(container):
        indexed_ends = _tail_ends(container, vstream, astream, duration)
    if indexed_ends is not None:
        # Cut short (an interrupted upload or recording): keep what is there, as ffmpeg does.
        video_end = indexed_ends.get(vstream.index, 0.0)
        if video_end <= 0:
            raise MediaError(
                "the file is truncated or corrupt: none of its video data is in the file "
                "(was the upload cut short?)",
                reason=Reason.CORRUPT,
                retryable=False,
            )
        end = max(indexed_ends.values())
        if end < duration - _TRUNCATION_SLACK or video_end < video.duration - _TRUNCATION_SLACK:
            duration = min(duration, end) if duration > 0 else end
            video = replace(video, duration=min(video.duration or video_end, video_end))
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


def _indexed_ends(
    container: av.container.InputContainer, streams: list[av.stream.Stream]
) -> dict[int, float] | None:
    """For a file whose index (MP4 moov) points past its end (a cut-off upload): per stream,
    the source time where its complete data ends. None when nothing is missing or the
    demuxer keeps no index."""
    size = container.size or 0
    if size <= 0:
        return None
    origin = origin_seconds(container)
    ends: dict[int, float] = {}
    truncated = False
    for stream in streams:
        try:
            entries = stream.index_entries
            count = len(entries)
            if count == 0:
                return None
            rows = [(entries[i].timestamp, entries[i].pos, entries[i].size) for i in range(count)]
        except Exception:  # noqa: BLE001 - index not available for this demuxer
            return None
        missing = [ts for ts, pos, length in rows if pos >= 0 and pos + length > size]
        if not missing:
            ends[stream.index] = _stream_duration(stream) or 0.0
            continue
        truncated = True
        ends[stream.index] = max(0.0, float(min(missing) * time_base(stream)) - origin)
    return ends if truncated else None


def _tail_ends(
    container: av.container.InputContainer,
    vstream: av.video.stream.VideoStream,
    astream: av.audio.stream.AudioStream | None,
    declared: float,
) -> dict[int, float] | None:
    """Where the packets really end when the header promises ``declared`` seconds: read the
    last few seconds. A file cut short (MKV, WebM, AVI, FLV... without the data its header
    announces) gives the ends of its streams; a complete one gives None."""
    origin = origin_seconds(container)
    target = origin + max(0.0, declared - _TAIL_SECONDS)
    streams = [s for s in (vstream, astream) if s is not None]
    ends: dict[int, float] = {}
    try:
        container.seek(int(target * av.time_base), backward=True)
        for packet in container.demux(*streams):
            if packet.pts is None or packet.time_base is None:
                continue
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base) - origin
            ends[packet.stream.index] = max(ends.get(packet.stream.index, 0.0), end)
    except (av.error.InvalidDataError, av.error.EOFError):
        pass  # the damage is where the data ends
    except av.error.FFmpegError:
        return None  # cannot seek there: leave the header's word
    finally:
        with contextlib.suppress(Exception):  # back to the start for the caller, if it can
            container.seek(0)
    if vstream.index not in ends:
        return None  # nothing read at the end (seek failed quietly): no evidence either way
    if max(ends.values()) >= declared - _TRUNCATION_SLACK:
        return None
    return ends


def _with_continuous_clock(container: av.container.InputContainer, info: MediaInfo) -> MediaInfo:
    """MPEG-TS/PS, Ogg: read every packet on the ffmpeg CLI's continuous clock (media.timeline);
    when the clock jumped, the duration is the corrected one and the plan reads the file as one
    chunk from its start."""
    fixer = ClockFixer(container)
    vstream = first_video_stream(container)
    streams = [s for s in container.streams if s.type in ("video", "audio")]
    origin = origin_seconds(container)
    ends: dict[int, float] = {}
    for n, packet in enumerate(container.demux(*streams)):
        if n >= _MAX_ESTIMATE_PACKETS:
            break
        fixer.fix(packet)
        if packet.pts is None or packet.time_base is None:
            continue
        end = float((packet.pts + (packet.duration or 0)) * packet.time_base) - origin
        ends[packet.stream.index] = max(ends.get(packet.stream.index, 0.0), end)
    if not fixer.jumps or info.video is None or vstream is None:
        return info
    video_end = ends.get(vstream.index, 0.0)
    return replace(
        info,
        duration=max(ends.values(), default=info.duration),
        video=replace(info.video, duration=video_end),
        clock_jumps=fixer.jumps,
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
