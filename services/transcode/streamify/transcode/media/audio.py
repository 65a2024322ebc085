"""Encode the whole audio track as AAC-LC 48 kHz stereo fMP4 HLS segments, without gaps."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import av.container
from av.audio.fifo import AudioFifo
from av.audio.resampler import AudioResampler

from streamify.transcode.media import timeline
from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.media.hls_output import (
    HlsTarget,
    aac_codecs,
    discard_hls,
    finish_hls,
    open_hls,
)
from streamify.transcode.media.models import AudioOutput
from streamify.transcode.media.source import open_input, origin_seconds, translate

SAMPLE_RATE = 48_000
CHANNELS = 2
AAC_FRAME = 1024
# Timestamp jumps in the source smaller than this are jitter, larger ones are filled with
# silence (gap) or trimmed (overlap) so the output stays continuous and in sync.
_JITTER = 0.02


def encode_audio(
    source: str,
    out_dir: Path,
    *,
    segment_seconds: float,
    bitrate: int = 128_000,
    ts_offset: float,
    duration: float | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> AudioOutput:
    """Encode the first audio stream of ``source`` into ``out_dir`` (``init.mp4`` +
    ``seg_%05d.m4s``). Output time 0 is the source's start (as for the video), a late-starting
    track is preceded by silence, and encoding stops at ``duration`` (default: the container's)
    because PyAV does not apply the source MP4's end trim. Raises MediaError (not retryable,
    reason ``no_audio_stream``) when the source has no audio.
    """
    out_dir = Path(out_dir)
    target = HlsTarget(out_dir, "audio")
    output = None
    written = 0
    try:
        with open_input(source) as container:
            if not container.streams.audio:
                raise MediaError(
                    "the file has no audio stream",
                    reason=Reason.NO_AUDIO_STREAM,
                    retryable=False,
                )
            astream = container.streams.audio[0]
            # PyAV's AudioStream stub lacks thread_type, which a Stream sets on its codec context.
            astream.thread_type = "AUTO"  # type: ignore[attr-defined]
            origin = origin_seconds(container)
            if duration is None:
                duration = (container.duration or 0) / 1_000_000 or None
            limit = round(duration * SAMPLE_RATE) if duration else None

            output = hls = open_hls(
                target, segment_seconds=segment_seconds, start_number=0, ts_offset=ts_offset
            )  # `hls`: the same container, for encode() below (a closure sees `output` as Optional)
            ostream = output.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
            ostream.bit_rate = bitrate
            ostream.time_base = Fraction(1, SAMPLE_RATE)
            fifo = AudioFifo()

            def encode(frame: av.AudioFrame | None) -> None:
                for packet in ostream.encode(frame):
                    hls.mux(packet)

            reported = -1.0
            for chunk in _continuous(container, astream, origin):
                fifo.write(chunk)
                while fifo.samples >= AAC_FRAME and (limit is None or written < limit):
                    n = AAC_FRAME if limit is None else min(AAC_FRAME, limit - written)
                    frame = fifo.read(n)
                    assert frame is not None  # n <= fifo.samples: the fifo has them
                    frame.pts = written
                    frame.time_base = ostream.time_base
                    encode(frame)
                    written += n
                if on_progress and limit and (written / limit) - reported >= 0.01:
                    reported = written / limit
                    on_progress(min(1.0, reported))
                if limit is not None and written >= limit:
                    break
            remaining = fifo.samples if limit is None else min(fifo.samples, limit - written)
            if remaining > 0:
                frame = fifo.read(remaining)
                assert frame is not None  # 0 < remaining <= fifo.samples
                frame.pts = written
                frame.time_base = ostream.time_base
                encode(frame)
                written += remaining
            if written == 0:
                raise MediaError(
                    "the file is truncated or corrupt: its audio stream has no decodable sound",
                    reason=Reason.CORRUPT,
                    retryable=False,
                )
            encode(None)
            output.close()
            output = None
        init = target.private_init.read_bytes()
        codecs = aac_codecs(init)
        segments = finish_hls(target)
    except MediaError:
        raise
    except Exception as exc:
        # Where the decoding stopped: the sound written so far.
        raise translate(exc, source, at=written / SAMPLE_RATE) from exc
    finally:
        if output is not None:
            with contextlib.suppress(Exception):  # the output is discarded anyway
                output.close()
            discard_hls(target)
    if on_progress:
        on_progress(1.0)
    return AudioOutput(
        segments=segments,
        init_path=target.init,
        codecs=codecs,
        sample_rate=SAMPLE_RATE,
        channels=CHANNELS,
        bitrate=bitrate,
        duration=written / SAMPLE_RATE,
    )


def _continuous(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream, origin: float
) -> Iterator[av.AudioFrame]:
    """48 kHz stereo float frames (pts None) forming one gapless timeline from source time 0:
    silence where the source starts late or jumps forward, samples dropped where it overlaps."""
    resampler = AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
    drop = 0  # output samples still to discard (source overlapped itself / started early)
    expected: float | None = None  # source time where the next decoded frame should start
    for frame in timeline.decode(container, stream):
        if frame.pts is not None and frame.time_base is not None:
            t = float(frame.pts * frame.time_base) - origin
            reference = 0.0 if expected is None else expected
            jump = t - reference
            if jump > _JITTER or (expected is None and jump > 0.0005):
                gap = round(jump * SAMPLE_RATE)
                yield _silence(gap)
            elif jump < -_JITTER or (expected is None and jump < -0.0005):
                drop += round(-jump * SAMPLE_RATE)
            expected = t + frame.samples / frame.sample_rate
        elif expected is not None:
            expected += frame.samples / frame.sample_rate
        frame.pts = None
        for out in resampler.resample(frame):
            out.pts = None
            if drop:
                if out.samples <= drop:
                    drop -= out.samples
                    continue
                out = _skip(out, drop)
                drop = 0
            yield out
    for out in resampler.resample(None):
        out.pts = None
        yield out


def _silence(samples: int) -> av.AudioFrame:
    frame = av.AudioFrame(format="fltp", layout="stereo", samples=samples)
    frame.sample_rate = SAMPLE_RATE
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    return frame


def _skip(frame: av.AudioFrame, samples: int) -> av.AudioFrame:
    fifo = AudioFifo()
    fifo.write(frame)
    fifo.read(samples)
    rest = fifo.read(frame.samples - samples)
    assert rest is not None  # callers skip fewer samples than the frame has
    rest.pts = None  # the fifo numbers its output from the samples it read: not ours
    return rest
