"""What ffprobe (the reference tool, not our probe) says about an output: the tests check our
outputs with it, since our own probe only reads sources (it refuses playlists)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.corpus import FFMPEG_TIMEOUT, ffmpeg_path


@dataclass(frozen=True)
class VideoStream:
    codec: str
    width: int
    height: int
    rotation_degrees: int  # from the display matrix, 0 when there is none
    duration: float  # of the whole input, seconds


def video_stream(path: str | Path) -> VideoStream:
    """The first video stream of ``path`` (a file or an HLS playlist) as ffprobe reads it."""
    ffprobe = str(Path(ffmpeg_path()).with_name("ffprobe"))
    proc = subprocess.run(
        [ffprobe, "-v", "error", "-of", "json", "-show_streams", "-show_format", str(path)],
        capture_output=True,
        text=True,
        timeout=FFMPEG_TIMEOUT,
        check=True,
    )
    info = json.loads(proc.stdout)
    stream = next(s for s in info["streams"] if s["codec_type"] == "video")
    rotation = next(
        (int(d["rotation"]) for d in stream.get("side_data_list", []) if "rotation" in d), 0
    )
    return VideoStream(
        codec=stream["codec_name"],
        width=int(stream["width"]),
        height=int(stream["height"]),
        rotation_degrees=rotation,
        duration=float(info["format"]["duration"]),
    )
