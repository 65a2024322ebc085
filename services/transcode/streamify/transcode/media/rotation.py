"""Turn decoded frames upright: apply the display matrix's clockwise rotation to the pixels."""

from __future__ import annotations

import av
import av.filter

# FFmpeg filters per clockwise rotation (what the ffmpeg CLI's autorotate inserts).
_FILTERS: dict[int, list[tuple[str, str]]] = {
    90: [("transpose", "clock")],
    180: [("hflip", ""), ("vflip", "")],
    270: [("transpose", "cclock")],
}


def normalize_rotation(degrees: int) -> int:
    """Any multiple of 90 (negative too) -> 0, 90, 180 or 270."""
    if degrees % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {degrees}")
    return degrees % 360


class Rotator:
    """Rotates frames clockwise by 0/90/180/270 degrees with a filter graph built on the first
    frame (and rebuilt if the frame size or format changes mid-stream). Rotation 0 is free.

    Rotated frames keep the source's display-matrix side data, but libx264 and the muxer do not
    carry frame side data into the output (measured with av 18.1: re-encoded output probes with
    rotation 0), so nothing downstream rotates them a second time.
    """

    def __init__(self, degrees: int) -> None:
        self.degrees = normalize_rotation(degrees)
        self._graph: av.filter.Graph | None = None
        self._key: tuple[int, int, str] | None = None

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        if self.degrees == 0:
            return frame
        key = (frame.width, frame.height, frame.format.name)
        if self._graph is None or key != self._key:
            self._graph = self._build(frame)
            self._key = key
        self._graph.push(frame)
        return self._graph.vpull()  # pull() from the one sink, typed as the video frame it is

    def _build(self, frame: av.VideoFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        node = graph.add_buffer(
            width=frame.width,
            height=frame.height,
            format=frame.format.name,  # type: ignore[arg-type]  # PyAV takes a name (VideoFormat(format)); its stub says VideoFormat
            time_base=frame.time_base,
        )
        for name, args in _FILTERS[self.degrees]:
            nxt = graph.add(name, args) if args else graph.add(name)
            node.link_to(nxt)
            node = nxt
        sink = graph.add("buffersink")
        node.link_to(sink)
        graph.configure()
        return graph


def rotated_size(width: int, height: int, degrees: int) -> tuple[int, int]:
    return (height, width) if normalize_rotation(degrees) in (90, 270) else (width, height)
