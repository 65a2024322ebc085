"""HLS playlist text: media playlists (EVENT while growing, VOD at the end) and the master."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from streamify.transcode.media.models import Segment

HLS_VERSION = 7  # fMP4 segments with EXT-X-MAP


@dataclass(frozen=True)
class Bandwidth:
    peak: int  # bits/s: max over segments of size*8/duration
    average: int  # bits/s: total bits / total duration

    @staticmethod
    def of(segments: Sequence[Segment]) -> Bandwidth:
        timed = [s for s in segments if s.duration > 0]
        if not timed:
            return Bandwidth(0, 0)
        # A last segment of a frame or two is mostly fragment headers: its bits/s says nothing
        # about the network a player needs, so the peak is taken over full-length segments.
        longest = max(s.duration for s in timed)
        full = [s for s in timed if s.duration >= longest / 2]
        peak = max(s.size_bytes * 8 / s.duration for s in full)
        average = sum(s.size_bytes for s in timed) * 8 / sum(s.duration for s in timed)
        return Bandwidth(math.ceil(peak), math.ceil(average))


@dataclass(frozen=True)
class Variant:
    """One video rendition in the master playlist (bandwidth of the video alone)."""

    uri: str  # relative, e.g. "720p/index.m3u8"
    width: int
    height: int
    codecs: str  # e.g. "avc1.64001f"
    frame_rate: float
    bandwidth: Bandwidth


@dataclass(frozen=True)
class AudioRendition:
    uri: str  # relative, e.g. "audio/index.m3u8"
    codecs: str  # "mp4a.40.2"
    bandwidth: Bandwidth
    channels: int = 2
    name: str = "default"
    language: str | None = None
    group_id: str = "audio"


def media_playlist(
    segments: Sequence[Segment],
    *,
    target_duration: float | None = None,
    init_uri: str = "init.mp4",
    ended: bool,
) -> str:
    """A media playlist of ``segments`` (consecutive indices, URIs = segment file names).

    EVENT while the video is still being encoded (``ended=False``: players poll and keep the
    segments they have), VOD with EXT-X-ENDLIST at the end. TARGETDURATION is the ceiling of
    the longest segment (1 ms tolerance), never below ``target_duration`` rounded up, so it
    stays constant while the playlist grows.
    """
    ordered = sorted(segments, key=lambda s: s.index)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.index != a.index + 1:
            raise ValueError(f"segments must be consecutive: {a.index} then {b.index}")
    longest = max((s.duration for s in ordered), default=0.0)
    target = max(1, math.ceil(longest - 0.001))
    if target_duration:
        target = max(target, math.ceil(target_duration - 0.001))
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{ordered[0].index if ordered else 0}",
        f"#EXT-X-PLAYLIST-TYPE:{'VOD' if ended else 'EVENT'}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{init_uri}"',
    ]
    for s in ordered:
        lines.append(f"#EXTINF:{s.duration:.6f},")
        lines.append(s.path.name)
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def master_playlist(variants: Sequence[Variant], audio: AudioRendition | None) -> str:
    """The master playlist, variants in the given order (the first is where players start).

    BANDWIDTH is the measured peak of the video plus the audio's peak, AVERAGE-BANDWIDTH the
    same for averages; CODECS lists the video's and, with audio, the audio's codec; silent
    videos get no audio group.
    """
    if not variants:
        raise ValueError("a master playlist needs at least one variant")
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{HLS_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio is not None:
        attrs = [
            "TYPE=AUDIO",
            f'GROUP-ID="{audio.group_id}"',
            f'NAME="{audio.name}"',
            "DEFAULT=YES",
            "AUTOSELECT=YES",
        ]
        if audio.language:
            attrs.append(f'LANGUAGE="{audio.language}"')
        attrs += [f'CHANNELS="{audio.channels}"', f'URI="{audio.uri}"']
        lines.append("#EXT-X-MEDIA:" + ",".join(attrs))
    for v in variants:
        peak, average = v.bandwidth.peak, v.bandwidth.average
        codecs = v.codecs
        if audio is not None:
            peak += audio.bandwidth.peak
            average += audio.bandwidth.average
            codecs = f"{v.codecs},{audio.codecs}"
        attrs = [
            f"BANDWIDTH={peak}",
            f"AVERAGE-BANDWIDTH={average}",
            f"RESOLUTION={v.width}x{v.height}",
            f'CODECS="{codecs}"',
            f"FRAME-RATE={v.frame_rate:.3f}",
        ]
        if audio is not None:
            attrs.append(f'AUDIO="{audio.group_id}"')
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(v.uri)
    return "\n".join(lines) + "\n"
