"""Small test clips generated with PyAV itself (there is no ffmpeg CLI on the machine).

Pictures come from FFmpeg's ``testsrc2`` filter and sound from its ``sine`` filter, run through
PyAV filter graphs, so no numpy is needed. Rotation is written as a real display matrix with
``VideoStream.set_display_rotation`` (PyAV >= 16), exactly what phones store in the MP4 ``tkhd``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import av.filter
from av.audio.resampler import AudioResampler


def _pull(graph: av.filter.Graph) -> Iterator[av.frame.Frame]:
    while True:
        try:
            yield graph.pull()
        except (av.error.EOFError, av.error.BlockingIOError):
            return


def _pictures(width: int, height: int, rate: Fraction, duration: float, pix_fmt: str):
    graph = av.filter.Graph()
    src = graph.add(
        "testsrc2",
        f"size={width}x{height}:rate={rate.numerator}/{rate.denominator}:duration={duration}",
    )
    fmt = graph.add("format", pix_fmt)
    sink = graph.add("buffersink")
    src.link_to(fmt)
    fmt.link_to(sink)
    graph.configure()
    return _pull(graph)


def _tone(sample_rate: int, duration: float, frequency: int = 440):
    graph = av.filter.Graph()
    src = graph.add("sine", f"frequency={frequency}:sample_rate={sample_rate}:duration={duration}")
    sink = graph.add("abuffersink")
    src.link_to(sink)
    graph.configure()
    return _pull(graph)


# Irregular frame intervals (ms) of the VFR clip: a phone dropping and bunching frames.
VFR_PATTERN_MS = (33, 17, 50, 33, 40, 26, 33, 67, 20, 13)


def make_clip(
    path: Path,
    *,
    width: int = 640,
    height: int = 360,
    fps: int | Fraction = 30,
    duration: float = 6.0,
    video: bool = True,
    audio: bool = True,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    gop: int | None = None,
    rotation: int = 0,
    vfr: bool = False,
    faststart: bool = True,
    audio_rate: int = 44_100,
    audio_channels: str = "stereo",
    video_start: float = 0.0,
) -> Path:
    """Write a test clip. ``rotation`` is clockwise (what the probe reports); ``faststart``
    False leaves the MP4 ``moov`` at the end (the mp4 muxer's default)."""
    path = Path(path)
    rate = Fraction(fps)
    options = {"movflags": "+faststart"} if faststart and path.suffix in (".mp4", ".mov") else {}
    out = av.open(str(path), mode="w", options=options)
    vstream = astream = None
    if video:
        vopts = {}
        if codec == "libx264":
            vopts = {"preset": "ultrafast", "sc_threshold": "0"}
            vopts["g"] = str(gop or int(rate))
        vstream = out.add_stream(codec, rate=rate, options=vopts)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, pix_fmt
        vstream.time_base = Fraction(1, 1000) if vfr else 1 / rate
        vstream.codec_context.time_base = vstream.time_base
        if rotation:
            vstream.set_display_rotation(-rotation)  # PyAV takes counter-clockwise degrees
    if audio:
        astream = out.add_stream("aac", rate=audio_rate, layout=audio_channels)
        astream.bit_rate = 96_000
    if vstream is not None:
        t_ms = 0
        for i, frame in enumerate(_pictures(width, height, rate, duration, pix_fmt)):
            if vfr:
                frame.pts = t_ms
                frame.time_base = Fraction(1, 1000)
                t_ms += VFR_PATTERN_MS[i % len(VFR_PATTERN_MS)]
                if t_ms / 1000 > duration:
                    break
            else:
                frame.pts = i + round(video_start * rate)
                frame.time_base = 1 / rate
            frame.pict_type = av.video.frame.PictureType.NONE
            for packet in vstream.encode(frame):
                out.mux(packet)
        for packet in vstream.encode():
            out.mux(packet)
    if astream is not None:
        resampler = AudioResampler(format="fltp", layout=audio_channels, rate=audio_rate)
        for frame in _tone(audio_rate, duration):
            frame.pts = None
            for converted in resampler.resample(frame):
                for packet in astream.encode(converted):
                    out.mux(packet)
        for packet in astream.encode():
            out.mux(packet)
    out.close()
    return path


# --- the named clips of the test plan ---------------------------------------------------------


def standard_clip(path: Path, *, duration: float = 6.0) -> Path:
    """(a) 640x360 30 fps H.264 + 44.1 kHz stereo AAC, faststart MP4."""
    return make_clip(path, duration=duration)


def video_only_clip(path: Path) -> Path:
    """(b) no audio stream."""
    return make_clip(path, width=320, height=180, duration=3.0, audio=False)


def audio_only_clip(path: Path) -> Path:
    """(c) an .m4a: AAC only."""
    return make_clip(path, duration=2.0, video=False)


def rotated_clip(path: Path, rotation: int = 90) -> Path:
    """(d) a phone-style portrait video: coded 320x180 landscape + a 90° display matrix."""
    return make_clip(path, width=320, height=180, duration=2.0, rotation=rotation)


def odd_size_clip(path: Path) -> Path:
    """(e) 641x359: 4:2:0 H.264 needs even sizes, so H.264 4:4:4 (x264 accepts odd ones)."""
    return make_clip(path, width=641, height=359, duration=2.0, pix_fmt="yuv444p", audio=False)


def ten_bit_clip(path: Path) -> Path:
    """(f) 10-bit 4:2:0 H.264 (High 10; the PyAV wheel's x264 has 10-bit)."""
    return make_clip(path, width=320, height=180, duration=2.0, pix_fmt="yuv420p10le", audio=False)


def four_two_two_clip(path: Path) -> Path:
    """(f) 10-bit 4:2:2 H.264 (High 4:2:2) in Matroska."""
    return make_clip(path, width=320, height=180, duration=2.0, pix_fmt="yuv422p10le", audio=False)


def short_clip(path: Path) -> Path:
    """(g) 0.5 s."""
    return make_clip(path, width=320, height=180, duration=0.5)


def long_gop_clip(path: Path) -> Path:
    """(h) one keyframe for the whole clip (keyint 600): seeking to any chunk decodes from 0."""
    return make_clip(path, width=320, height=180, duration=4.0, gop=600, audio=False)


def vfr_clip(path: Path) -> Path:
    """(i) variable frame rate: irregular pts in a 1/1000 time base."""
    return make_clip(path, width=320, height=180, duration=4.0, vfr=True)


def moov_at_end_clip(path: Path) -> Path:
    """(j) non-faststart MP4: the index after the media data (streamed from the end first)."""
    return make_clip(path, width=320, height=180, duration=3.0, faststart=False)


def empty_file(path: Path) -> Path:
    Path(path).write_bytes(b"")
    return Path(path)


def random_bytes_file(path: Path, size: int = 200_000) -> Path:
    Path(path).write_bytes(os.urandom(size))
    return Path(path)


def truncated_clip(path: Path, *, faststart: bool = True) -> Path:
    """A clip cut in half, as an interrupted upload leaves it."""
    full = make_clip(
        Path(path).with_suffix(".full.mp4"),
        width=320,
        height=180,
        duration=4.0,
        faststart=faststart,
    )
    data = full.read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    full.unlink()
    return Path(path)


# --- reading HLS outputs back -----------------------------------------------------------------


def decode_video_segment(init: Path, segment: Path) -> list[av.VideoFrame]:
    """Every frame of one fMP4 segment, decoded on its own (init + segment bytes in memory),
    as a player that jumps to this segment would."""
    import io

    data = Path(init).read_bytes() + Path(segment).read_bytes()
    with av.open(io.BytesIO(data)) as container:
        return list(container.decode(video=0))


def decode_audio_track(init: Path, segments: list[Path]) -> list[av.AudioFrame]:
    """Every audio frame of a whole fMP4 rendition (init + all segments concatenated)."""
    import io

    data = Path(init).read_bytes() + b"".join(Path(s).read_bytes() for s in segments)
    with av.open(io.BytesIO(data)) as container:
        return list(container.decode(audio=0))


def parse_master(text: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(variants with their attributes and "URI", EXT-X-MEDIA entries) of a master playlist."""
    import re

    def attributes(line: str) -> dict[str, str]:
        body = line.split(":", 1)[1]
        return {k: v.strip('"') for k, v in re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', body)}

    variants: list[dict[str, str]] = []
    media: list[dict[str, str]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            variants.append({**attributes(line), "URI": lines[i + 1]})
        elif line.startswith("#EXT-X-MEDIA:"):
            media.append(attributes(line))
    return variants, media


def sparse_frames_clip(path: Path, *, frames: int = 3, seconds_apart: int = 100_000) -> Path:
    """A few tiny grey frames `seconds_apart` apart: a file of about 1.5 KB whose header truly
    says it lasts frames x seconds_apart (a resolution of work, not of pixels)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(1, seconds_apart))
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame(64, 64, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([128]) * plane.buffer_size)
            frame.pts, frame.time_base = i, Fraction(seconds_apart, 1)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
