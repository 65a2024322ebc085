"""One fMP4 HLS output written by libavformat's ``hls`` muxer, and what it produced.

Every task (a video chunk of one rung, or the whole audio) writes its segments as
``seg_%05d.m4s`` numbered from the task's first segment index, and its init segment under a
task-private name that is then atomically renamed to ``init.mp4``: with ``frag_discont`` and the
same encoder settings the init segments of all chunks are byte-identical (recipes §10), so the
rename is idempotent and concurrent chunks never expose a half-written init segment.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import av
import av.container

from streamify.transcode.media.models import Segment

INIT_NAME = "init.mp4"
SEGMENT_PATTERN = "seg_%05d.m4s"


@dataclass(frozen=True)
class HlsTarget:
    directory: Path
    tag: str  # task-private file name part, e.g. "c00003"

    @property
    def playlist(self) -> Path:
        return self.directory / f".{self.tag}.m3u8"

    @property
    def private_init(self) -> Path:
        return self.directory / f".{self.tag}.{INIT_NAME}"

    @property
    def init(self) -> Path:
        return self.directory / INIT_NAME


def open_hls(
    target: HlsTarget, *, segment_seconds: float, start_number: int, ts_offset: float
) -> av.container.OutputContainer:
    target.directory.mkdir(parents=True, exist_ok=True)
    options = {
        "hls_time": f"{segment_seconds:.6f}",
        "hls_segment_type": "fmp4",
        # Without frag_discont every chunk's fragments restart at time 0 (recipes §10).
        "hls_segment_options": "movflags=+frag_discont",
        "hls_fmp4_init_filename": target.private_init.name,
        "hls_segment_filename": str(target.directory / SEGMENT_PATTERN),
        "start_number": str(start_number),
        "hls_list_size": "0",
        "hls_playlist_type": "vod",
        # A duration in seconds, the same for every chunk and the audio; it keeps libavformat's
        # avoid_negative_ts from shifting chunk 0 and the audio differently from the others.
        "output_ts_offset": f"{ts_offset:.6f}",
    }
    return av.open(str(target.playlist), mode="w", format="hls", options=options)


def finish_hls(target: HlsTarget) -> list[Segment]:
    """After the muxer is closed: the segments it wrote (from its own playlist), init renamed."""
    text = target.playlist.read_text()
    segments: list[Segment] = []
    duration: float | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            duration = float(line[len("#EXTINF:") :].split(",", 1)[0])
        elif line and not line.startswith("#"):
            path = target.directory / os.path.basename(line)
            index = int(path.stem.rsplit("_", 1)[1])
            segments.append(
                Segment(
                    index=index,
                    path=path,
                    duration=duration or 0.0,
                    size_bytes=path.stat().st_size,
                )
            )
            duration = None
    os.replace(target.private_init, target.init)
    target.playlist.unlink(missing_ok=True)
    return segments


def discard_hls(target: HlsTarget) -> None:
    """Remove a failed task's private files (its segments are overwritten by the retry)."""
    target.playlist.unlink(missing_ok=True)
    target.private_init.unlink(missing_ok=True)


# --- RFC 6381 codecs strings, read from the init segment that players will see ---------------


def _find_box(data: bytes, fourcc: bytes) -> bytes | None:
    """Payload of the first box named ``fourcc`` (a byte search: the sample entries that hold
    avcC/esds are not plain containers, and a 4CC collision inside an init segment is harmless
    here because the payload is validated below)."""
    at = data.find(fourcc)
    while at >= 4:
        size = struct.unpack(">I", data[at - 4 : at])[0]
        if 8 <= size <= len(data) - at + 4:
            return data[at + 4 : at - 4 + size]
        at = data.find(fourcc, at + 1)
    return None


def avc_codecs(init: bytes) -> str:
    """``avc1.PPCCLL`` from the avcC box: profile_idc, constraint flags, level_idc of the SPS."""
    avcc = _find_box(init, b"avcC")
    if avcc is None or len(avcc) < 4 or avcc[0] != 1:
        raise ValueError("no H.264 decoder configuration (avcC) in the init segment")
    return f"avc1.{avcc[1]:02x}{avcc[2]:02x}{avcc[3]:02x}"


def aac_codecs(init: bytes) -> str:
    """``mp4a.40.N`` from the esds box: MPEG-4 audio, N = audio object type (2 = AAC-LC)."""
    esds = _find_box(init, b"esds")
    if esds is None:
        raise ValueError("no audio decoder configuration (esds) in the init segment")
    pos = 4  # version + flags

    def descriptor(pos: int) -> tuple[int, int, int]:
        tag = esds[pos]
        pos += 1
        length = 0
        for _ in range(4):
            b = esds[pos]
            pos += 1
            length = (length << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        return tag, length, pos

    tag, _, pos = descriptor(pos)
    if tag != 0x03:
        raise ValueError("malformed esds: no ES descriptor")
    flags = esds[pos + 2]
    pos += 3
    if flags & 0x80:
        pos += 2
    if flags & 0x40:
        pos += 1 + esds[pos]
    if flags & 0x20:
        pos += 2
    tag, _, pos = descriptor(pos)
    if tag != 0x04:
        raise ValueError("malformed esds: no decoder config descriptor")
    object_type = esds[pos]
    pos += 13
    tag, _, pos = descriptor(pos)
    if tag != 0x05:
        return f"mp4a.{object_type:02x}"
    aot = esds[pos] >> 3
    if aot == 31:
        aot = 32 + (((esds[pos] & 0x07) << 3) | (esds[pos + 1] >> 5))
    return f"mp4a.{object_type:02x}.{aot}"
