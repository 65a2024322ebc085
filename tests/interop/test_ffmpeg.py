"""The FFmpeg CLI as a client of the playback URL (Debian's /usr/bin/ffmpeg and ffprobe): its
HLS demuxer resolves the playlists' relative URIs itself and sends `Range: bytes=0-` on every
object, like many set-top and server-side players do.

`-v error` is not enough to see a broken stream: FFmpeg's HLS demuxer logs an object it could not
fetch ("HTTP error 500", "Failed to open segment N of playlist M") as a WARNING, skips it and
still exits 0. So both tools run with `-loglevel level+verbose` and the tests require no
warning or error line at all, and FFmpeg's own count of decoded frames for every rung.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.interop.conftest import VIDEOS, ffmpeg_tool

pytestmark = pytest.mark.interop

FPS = 30  # tests.support.clips.make_clip's default
_LEVELED = re.compile(r"\[(warning|error|fatal|panic)\] ")
_DECODED = re.compile(
    r"Input stream #0:(\d+) \((video|audio)\): \d+ packets read \(\d+ bytes\); (\d+) frames decoded"
)


def _problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if _LEVELED.search(line)]


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_ffprobe_lists_every_variant(videos, visibility):
    video = videos[visibility]
    probe = subprocess.run(
        [
            ffmpeg_tool("ffprobe"),
            "-loglevel",
            "level+warning",
            "-show_streams",
            "-show_programs",
            "-of",
            "json",
            video.playback_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if probe.returncode != 0 or _problems(probe.stderr):
        pytest.fail(f"ffprobe exit {probe.returncode}:\n{probe.stderr[-3000:]}", pytrace=False)
    info = json.loads(probe.stdout)
    streams = info["streams"]
    video_streams = [s for s in streams if s["codec_type"] == "video"]
    assert sorted(s["height"] for s in video_streams) == sorted(video.heights), video_streams
    assert all(s.get("pix_fmt") for s in video_streams), "a rung's codec parameters were not read"
    assert any(s["codec_type"] == "audio" for s in streams), streams
    assert len(info["programs"]) == len(video.heights), info["programs"]


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_ffmpeg_decodes_every_segment_of_every_rung(videos, visibility):
    """`ffmpeg -i <playback_url> -map 0 -f null -`: every stream of every variant decoded, exit 0,
    no warning or error, and each rung yields the whole clip's frames."""
    video = videos[visibility]
    expected = round(VIDEOS[visibility][0]["duration"] * FPS)
    run = subprocess.run(
        [
            ffmpeg_tool("ffmpeg"),
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "level+verbose",
            "-i",
            video.playback_url,
            "-map",
            "0",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    problems = _problems(run.stderr)
    decoded = {int(i): (kind, int(n)) for i, kind, n in _DECODED.findall(run.stderr)}
    frames = sorted(n for kind, n in decoded.values() if kind == "video")
    summary = (
        f"exit {run.returncode}; video frames decoded per rung: {frames} (expected {expected} each, "
        f"{len(video.heights)} rungs)\n" + "\n".join(problems[:20])
    )
    complete = len(frames) == len(video.heights) and all(n >= expected - 1 for n in frames)
    audio = any(kind == "audio" and n > 0 for kind, n in decoded.values())
    if run.returncode != 0 or problems or not complete or not audio:
        pytest.fail(summary, pytrace=False)
