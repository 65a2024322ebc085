"""Encode one chunk of the video into every rendition from ONE decode.

Pipeline (memory is bounded by the queues, whatever the video's length)::

    demux+decode (frame threads) -> rotate -> constant-frame-rate grid -> bounded queue per rung
        -> rung thread: own VideoReformatter (scale + yuv420p) -> libx264 -> hls muxer (fMP4)

Every output frame ``n`` of the whole video gets pts ``n`` in a 1/frame_rate time base, so the
chunks written by different workers join exactly; the first frame of every segment is an IDR
forced with ``pict_type = I`` (``forced-idr=1``), every other frame is reset to ``NONE`` so
x264 decides freely (B-frames kept) and never cuts a GOP at the source's keyframes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
from av.video.frame import PictureType
from av.video.reformatter import Interpolation, VideoReformatter

from streamify.transcode.media import grid, timeline
from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.media.hls_output import (
    HlsTarget,
    avc_codecs,
    discard_hls,
    finish_hls,
    open_hls,
)
from streamify.transcode.media.models import Chunk, Rendition, RenditionChunkOutput, Segment
from streamify.transcode.media.probe import first_video_stream
from streamify.transcode.media.rotation import Rotator
from streamify.transcode.media.source import open_input, origin_seconds, time_base, translate

ProgressCallback = Callable[[float], None]
log = logging.getLogger("streamify.transcode.media")

# Frames waiting per rung: the decoder runs at most this far ahead of the slowest encoder.
QUEUE_FRAMES = 8
# Undecodable packets tolerated before the source is declared corrupt.
# The video stream may end this much before the planned end (the container's duration also
# counts the audio): the last picture is held. A bigger gap means a truncated source.
MAX_HOLD_SECONDS = 5.0
# Chunk joins. Each chunk is a fresh x264 whose one-pass ABR starts cold (a guessed quantiser,
# no history) at the chunk's first IDR and needs 2-4 s to converge: the first segment of every
# chunk came out 10-15% under the target, and the rungs with the most bits per pixel lost up to
# 1.2 dB PSNR-Y against one ffmpeg process at the same bitrate (docs/performance.md,
# "Transcode"). For the rungs up to SMALL_RUNG_MAX_PIXELS (720p and below), which lose the most
# and cost the least:
# - pre-roll: every chunk but the first also encodes PREROLL_SECONDS of the video before its
#   start and throws those packets away, so the rate control reaches the chunk's first IDR warm;
# - x264 ``ratetol`` SMALL_RUNG_RATE_TOLERANCE (default 1.0): the ABR makes up what is left of
#   the cold-start undershoot within the chunk instead of over a whole video it never sees.
#   VBV (maxrate, bufsize) bounds the peaks as before;
# - ONE unsliced x264 thread. PyAV's encoder defaults to SLICE threading, which cuts every frame
#   into slices: 0.07 / 0.16 / 0.23 dB worse at 480p / 360p / 240p than the ffmpeg CLI's frame
#   threads for the same bits. Frame threads would add ~50 MB per chunk process; these rungs
#   are cheap and the rung threads already keep the cores busy.
# 1080p keeps x264's defaults: it loses <= 0.08 dB without them, pre-roll would cost most there,
# and a tighter ratetol cost it 0.07 dB on content whose complexity changes.
SMALL_RUNG_MAX_PIXELS = 1280 * 720
PREROLL_SECONDS = 1.0
SMALL_RUNG_RATE_TOLERANCE = 0.5


@dataclass(frozen=True)
class _Slot:
    frame: av.VideoFrame
    n: int  # output frame index within the whole video
    idr: bool


def encode_video_chunk(
    source: str,
    chunk: Chunk,
    renditions: Sequence[Rendition],
    out_dir: Path,
    *,
    segment_seconds: float,
    frame_rate: float,
    rotation: int = 0,
    ts_offset: float,
    on_progress: ProgressCallback | None = None,
    encoder_threads: int | None = None,
) -> list[RenditionChunkOutput]:
    """Encode ``chunk`` of ``source`` into every rendition, under ``out_dir/<rendition id>/``.

    ``chunk.start`` must be on the segment grid; ``chunk.end`` is either on it or the end of
    the video. ``encoder_threads`` is x264's thread count per rung (None: x264 decides).
    Raises MediaError; the outputs of a failed call are left for the retry to overwrite.
    """
    if not renditions:
        raise ValueError("no renditions to encode")
    out_dir = Path(out_dir)
    rate = grid.as_rate(frame_rate)
    n_start = grid.frame_index_at(chunk.start, rate)
    n_end = grid.frame_index_at(chunk.end, rate)
    n_first = max(0, n_start - math.ceil(PREROLL_SECONDS * rate))
    idr_frames = _idr_frames(chunk.first_segment_index, n_start, n_end, segment_seconds, rate)

    rungs = [
        _RungEncoder(
            rendition,
            HlsTarget(out_dir / rendition.id, f"c{chunk.index:05d}"),
            rate=rate,
            segment_seconds=segment_seconds,
            first_segment=chunk.first_segment_index,
            first_frame=n_start,
            ts_offset=ts_offset,
            encoder_threads=encoder_threads,
        )
        for rendition in renditions
    ]
    try:
        for rung in rungs:
            rung.start()
        total = n_end - n_first
        reported = -1.0
        for count, slot in enumerate(
            _frames_on_grid(source, chunk, rate, n_first, n_end, idr_frames, rotation), 1
        ):
            for rung in rungs:
                rung.put(slot)
            if on_progress is not None:
                fraction = count / total
                if fraction - reported >= 0.01 or count == total:
                    reported = fraction
                    on_progress(fraction)
    except BaseException:
        for rung in rungs:
            rung.abort()
        raise
    finally:
        for rung in rungs:
            rung.finish()
    outputs = [rung.result() for rung in rungs]
    expected = _segment_durations(idr_frames, n_end, rate)
    for output in outputs:
        _check_segments(output, chunk, expected)
    return [
        RenditionChunkOutput(
            rendition_id=o.rendition_id,
            segments=[
                Segment(s.index, s.path, d, s.size_bytes)
                for s, d in zip(o.segments, expected, strict=True)
            ],
            init_path=o.init_path,
            codecs=o.codecs,
            width=o.width,
            height=o.height,
        )
        for o in outputs
    ]


def _idr_frames(
    first_segment: int, n_start: int, n_end: int, segment_seconds: float, rate: Fraction
) -> list[int]:
    if n_end <= n_start:
        raise ValueError(f"empty chunk: frames {n_start}..{n_end}")
    if grid.segment_start_frame(first_segment, segment_seconds, rate) != n_start:
        raise ValueError(
            f"chunk start (frame {n_start}) is not the start of segment {first_segment}"
        )
    frames = []
    k = first_segment
    while (n := grid.segment_start_frame(k, segment_seconds, rate)) < n_end:
        frames.append(n)
        k += 1
    return frames


def _segment_durations(idr_frames: list[int], n_end: int, rate: Fraction) -> list[float]:
    bounds = [*idr_frames, n_end]
    return [float(Fraction(b - a) / rate) for a, b in zip(bounds, bounds[1:], strict=False)]


def _check_segments(output: RenditionChunkOutput, chunk: Chunk, expected: list[float]) -> None:
    got = [s.index for s in output.segments]
    want = list(range(chunk.first_segment_index, chunk.first_segment_index + len(expected)))
    bad = got != want or any(
        abs(s.duration - d) > 0.002 for s, d in zip(output.segments, expected, strict=False)
    )
    if bad:
        raise MediaError(
            f"rendition {output.rendition_id}, chunk {chunk.index}: the muxer wrote segments "
            f"{got} with durations {[s.duration for s in output.segments]}, expected {want} "
            f"with {expected}",
            reason=Reason.ENCODER_FAILED,
            retryable=False,
        )


# --- decode once, on the constant-frame-rate grid ---------------------------------------------


def _frames_on_grid(
    source: str,
    chunk: Chunk,
    rate: Fraction,
    n_start: int,
    n_end: int,
    idr_frames: list[int],
    rotation: int,
) -> Iterator[_Slot]:
    """Output frames ``n_start .. n_end-1``: each slot shows the latest source frame whose
    time, rounded to the nearest slot, is at or before it (the ``fps`` filter's rule). VFR and
    rate changes duplicate or drop frames; gaps before the first frame are filled with it."""
    idr = set(idr_frames)
    rotate = Rotator(rotation)
    last: av.VideoFrame | None = None
    last_slot = 0
    last_end_slot = 0
    next_n = n_start
    with open_input(source) as container:
        stream = first_video_stream(container)
        if stream is None:
            raise MediaError(
                "the file is not a video: no video stream found",
                reason=Reason.NO_VIDEO_STREAM,
                retryable=False,
            )
        stream.thread_type = "AUTO"
        origin = origin_seconds(container)
        try:
            for frame in _decode_from(container, stream, origin, Fraction(n_start) / rate, rate):
                t = _frame_time(frame, origin, last, last_end_slot, rate)
                slot = max(math.floor(t * rate + Fraction(1, 2)), last_slot)
                if last is not None:
                    while next_n < min(slot, n_end):
                        yield _Slot(last, next_n, next_n in idr)
                        next_n += 1
                else:
                    slot = min(slot, n_start)  # the first picture also fills the gap before it
                if slot >= n_end:
                    break
                last = rotate(frame)
                last_slot = slot
                last_end_slot = max(slot + 1, _end_slot(frame, t, rate))
            else:
                last_end_slot = max(last_end_slot, last_slot + 1)
        except MediaError:
            raise
        except Exception as exc:
            # Where the decoding stopped: the last picture decoded (or the chunk's start).
            at = float(Fraction(last_slot) / rate) if last is not None else chunk.start
            raise translate(exc, source, at=at) from exc
    if last is None:
        raise MediaError(
            f"the file is truncated or corrupt: no video frame found at or after "
            f"{chunk.start:.3f} s",
            reason=Reason.CORRUPT,
            retryable=False,
        )
    # The source ended before n_end: hold the last picture (video shorter than the audio),
    # unless the gap is so large the file must be cut short.
    missing = n_end - max(next_n, last_end_slot)
    if missing / rate > MAX_HOLD_SECONDS:
        raise MediaError(
            f"the file is truncated or corrupt: the video stops at "
            f"{float(last_end_slot / rate):.3f} s but should last until "
            f"{float(n_end / rate):.3f} s",
            reason=Reason.CORRUPT,
            retryable=False,
        )
    while next_n < n_end:
        yield _Slot(last, next_n, next_n in idr)
        next_n += 1


# Seek this much further back when a seek lands after the keyframe a chunk needs.
SEEK_BACK_SECONDS = 10.0


def _decode_from(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    origin: float,
    start: Fraction,
    rate: Fraction,
) -> Iterator[av.VideoFrame]:
    """Decoded frames from the keyframe at or before ``start`` (source seconds) on.

    Containers without a keyframe index (MPEG-TS/PS, some AVI/FLV) seek by timestamp and may
    land after the last keyframe before ``start``: the decoder then skips to the next keyframe
    and the first frame comes too late. Then we seek further back, and finally decode from the
    start of the file (a single-keyframe TS recording), as the ffmpeg CLI would."""
    if start <= 0:
        yield from timeline.decode(container, stream)
        return
    tolerance = 1 / (2 * rate)
    for back in (0.0, SEEK_BACK_SECONDS, None):
        if back is None:
            container.seek(0)
        else:
            target = origin + max(0.0, float(start) - back)
            container.seek(
                int(target / time_base(stream)), stream=stream, backward=True, any_frame=False
            )
        frames = timeline.decode(container, stream)
        first = next(frames, None)
        if back is not None and (
            first is None or _frame_time(first, origin, None, 0, rate) > start + tolerance
        ):
            continue  # landed past the keyframe we need: try from further back
        if first is not None:
            yield first
            yield from frames
        return


def _frame_time(
    frame: av.VideoFrame,
    origin: float,
    last: av.VideoFrame | None,
    last_end_slot: int,
    rate: Fraction,
) -> Fraction:
    if frame.pts is not None and frame.time_base is not None:
        return Fraction(frame.pts) * frame.time_base - Fraction(origin)
    if last is None:
        return Fraction(0)
    return Fraction(last_end_slot) / rate  # no timestamp: right after the previous frame


def _end_slot(frame: av.VideoFrame, t: Fraction, rate: Fraction) -> int:
    duration = frame.duration
    if duration and frame.time_base is not None:
        return math.floor((t + Fraction(duration) * frame.time_base) * rate + Fraction(1, 2))
    return 0


# --- one rung: scale + encode + mux, in its own thread ----------------------------------------


class _Aborted(Exception):
    """The chunk was abandoned (another rung or the decoder failed)."""


class _RungEncoder:
    def __init__(
        self,
        rendition: Rendition,
        target: HlsTarget,
        *,
        rate: Fraction,
        segment_seconds: float,
        first_segment: int,
        first_frame: int,
        ts_offset: float,
        encoder_threads: int | None,
    ) -> None:
        self.rendition = rendition
        self.target = target
        self.rate = rate
        self.time_base = Fraction(1) / rate
        self.segment_seconds = segment_seconds
        self.first_segment = first_segment
        self.first_frame = first_frame
        self.small = rendition.width * rendition.height <= SMALL_RUNG_MAX_PIXELS
        self.ts_offset = ts_offset
        self.encoder_threads = encoder_threads
        self.queue: queue.Queue[_Slot | None] = queue.Queue(maxsize=QUEUE_FRAMES)
        self.error: BaseException | None = None
        self.aborted = False
        self.segments: list[Segment] = []
        self.codecs = ""
        self.thread = threading.Thread(target=self._run, name=f"rung-{rendition.id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def put(self, slot: _Slot) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(slot)

    def abort(self) -> None:
        self.aborted = True

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()

    def result(self) -> RenditionChunkOutput:
        if self.error is not None:
            raise self.error
        return RenditionChunkOutput(
            rendition_id=self.rendition.id,
            segments=self.segments,
            init_path=self.target.init,
            codecs=self.codecs,
            width=self.rendition.width,
            height=self.rendition.height,
        )

    def _options(self) -> dict[str, str]:
        r = self.rendition
        keyint = grid.frames_per_segment(self.segment_seconds, self.rate)
        options = {
            "preset": r.preset,
            "profile": r.profile,
            "g": str(keyint),
            "keyint_min": str(keyint),
            "sc_threshold": "0",
            "forced-idr": "1",
            "maxrate": str(r.max_bitrate),
            "bufsize": str(r.buffer_size),
            # Closed GOPs: no frame of a segment refers to the previous one.
            "x264-params": "open-gop=0",
        }
        if self.small:
            options["x264-params"] += f":ratetol={SMALL_RUNG_RATE_TOLERANCE}"
        if self.encoder_threads:
            options["threads"] = str(self.encoder_threads)
        elif self.small:
            options["threads"] = "1"
        return options

    def _mux(
        self, output: av.container.OutputContainer, packet: av.Packet[av.video.stream.VideoStream]
    ) -> None:
        # Pre-roll packets (before the chunk's first frame) only warmed up the rate control.
        # The chunk's first frame is an IDR and GOPs are closed, so every packet before it in
        # decode order is also before it in presentation order.
        if packet.pts is not None and packet.pts < self.first_frame:
            return
        output.mux(packet)

    def _run(self) -> None:
        output = None
        drained = False
        try:
            output = open_hls(
                self.target,
                segment_seconds=self.segment_seconds,
                start_number=self.first_segment,
                ts_offset=self.ts_offset,
            )
            stream = output.add_stream("libx264", rate=self.rate, options=self._options())
            stream.width = self.rendition.width
            stream.height = self.rendition.height
            stream.pix_fmt = "yuv420p"
            stream.bit_rate = self.rendition.bitrate
            stream.time_base = self.time_base
            scaler = VideoReformatter()  # one per thread: a shared one deadlocks (recipes §10)
            while (slot := self.queue.get()) is not None:
                if self.aborted:
                    continue  # keep draining so the decoder never blocks on a full queue
                if slot.n < self.first_frame and not self.small:
                    continue  # pre-roll frame, for the small rungs only
                frame = scaler.reformat(
                    slot.frame,
                    width=self.rendition.width,
                    height=self.rendition.height,
                    format="yuv420p",
                    interpolation=Interpolation.BICUBIC,
                )
                # When no scaling is needed reformat() returns the decoded frame itself: setting
                # pts/pict_type on it is still safe, only this thread writes them and libx264
                # copies them inside encode(), and other rungs read only the pixels.
                frame.pts = slot.n
                frame.time_base = self.time_base
                frame.pict_type = PictureType.I if slot.idr else PictureType.NONE
                for packet in stream.encode(frame):
                    self._mux(output, packet)
            drained = True
            if self.aborted:
                raise _Aborted()
            for packet in stream.encode():
                self._mux(output, packet)
            output.close()
            output = None
            with open(self.target.private_init, "rb") as f:
                self.codecs = avc_codecs(f.read())
            self.segments = finish_hls(self.target)
        except BaseException as exc:
            if isinstance(exc, (MediaError, _Aborted)):
                self.error = exc
            else:
                log.error("encoding the %s rendition failed", self.rendition.id, exc_info=exc)
                self.error = MediaError(
                    f"encoding the {self.rendition.id} rendition failed (an internal error: "
                    f"{type(exc).__name__}); the worker's log has the details",
                    reason=Reason.ENCODER_FAILED,
                    retryable=True,
                )
                self.error.__cause__ = exc
            self.aborted = True
            while not drained and self.queue.get() is not None:
                pass
        finally:
            if output is not None:
                with contextlib.suppress(Exception):  # the output is discarded anyway
                    output.close()
                discard_hls(self.target)
