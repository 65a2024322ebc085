"""Extract the poster image: one upright frame as a JPEG, no wider than ``max_width``."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
from av.video.reformatter import Interpolation, VideoReformatter

from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.media.probe import first_video_stream
from streamify.transcode.media.rotation import Rotator
from streamify.transcode.media.source import open_input, origin_seconds, time_base, translate

JPEG_QUALITY = 3  # mjpeg qscale: 2 (best) .. 31


def extract_poster(
    source: str,
    out_path: Path,
    *,
    at_seconds: float,
    max_width: int = 1280,
    rotation: int = 0,
) -> tuple[int, int]:
    """Write the frame shown at ``at_seconds`` (or the last one if the video is shorter) as a
    JPEG at ``out_path``; returns its (width, height), even, aspect ratio kept."""
    out_path = Path(out_path)
    try:
        frame, sar = _frame_at(source, at_seconds)
        frame = Rotator(rotation)(frame)
        display_w = frame.width * (sar if rotation % 180 == 0 else 1)
        display_h = frame.height * (sar if rotation % 180 else 1)
        width = min(max_width, round(display_w))
        height = round(display_h * width / display_w)
        width, height = max(2, width - width % 2), max(2, height - height % 2)
        image = VideoReformatter().reformat(
            frame,
            width=width,
            height=height,
            format="yuvj420p",
            interpolation=Interpolation.BICUBIC,
        )
        encoder = av.CodecContext.create("mjpeg", "w")
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
        encoder.time_base = Fraction(1, 25)
        encoder.options = {"qmin": str(JPEG_QUALITY), "qmax": str(JPEG_QUALITY)}
        image.pts = 0
        data = b"".join(bytes(p) for p in [*encoder.encode(image), *encoder.encode(None)])
    except MediaError:
        raise
    except Exception as exc:
        raise translate(exc, source) from exc
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out_path)
    return width, height


def _frame_at(source: str, at_seconds: float) -> tuple[av.VideoFrame, float]:
    with open_input(source) as container:
        stream = first_video_stream(container)
        if stream is None:
            raise MediaError(
                "the file is not a video: no video stream found",
                reason=Reason.NO_VIDEO_STREAM,
                retryable=False,
            )
        stream.thread_type = "AUTO"
        sar = float(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else 1.0
        origin = origin_seconds(container)
        if at_seconds > 0:
            container.seek(
                int((origin + at_seconds) / time_base(stream)),
                stream=stream,
                backward=True,
                any_frame=False,
            )
        chosen = None
        for frame in container.decode(stream):
            chosen = frame
            if frame.time is None or frame.time - origin >= at_seconds - 0.001:
                break
        if chosen is None and at_seconds > 0:
            # Seeked past the last keyframe of a short or odd file: take the first frame.
            container.seek(0)
            chosen = next(iter(container.decode(stream)), None)
        if chosen is None:
            raise MediaError(
                "the file is truncated or corrupt: its video stream has no decodable frame",
                reason=Reason.CORRUPT,
                retryable=False,
            )
        return chosen, sar
