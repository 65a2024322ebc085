"""One continuous clock for sources whose timestamps jump: the ffmpeg CLI's rule.

Formats flagged ``AVFMT_TS_DISCONT`` (MPEG-TS, MPEG-PS, Ogg) carry the sender's clock, which
restarts or jumps when recordings are joined (``cat a.ts b.ts``), when a DVR resumes, when an
encoder restarts. The ffmpeg CLI (fftools ``process_input``) keeps one offset per input file:
a packet whose DTS is more than ``dts_delta_threshold`` (10 s) away from where its stream
should continue, or that goes back by more than 0.1 s, moves the offset so the packet
continues its stream; the offset then applies to every stream of the file. Shorter forward
jumps are real gaps (a lost signal) and stay.

:class:`ClockFixer` applies that rule to packets, in place, before they are decoded. It is
deterministic: every task that demuxes the same packets from the start of the file gets the
same timeline, which is why a source with jumps is planned as ONE chunk read from its start
(after a jump, a time in the source no longer names one place in the file, so seeking by time
cannot work). Other formats are left alone (``enabled`` is False).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import TypeVar, cast, overload

import av
import av.audio.stream
import av.container
import av.format
import av.stream
import av.video.stream

# fftools' dts_delta_threshold (seconds) and its 0.1 s tolerance for going back in time.
DELTA_THRESHOLD = Fraction(10)
BACKWARD_TOLERANCE = Fraction(1, 10)

StreamT = TypeVar("StreamT", bound=av.stream.Stream)


def has_discontinuous_clock(container: av.container.InputContainer) -> bool:
    # PyAV's stub declares each Flags member with cast(ClassVar[Flags], ...), so `.value` reads
    # as Flags; it is the flag's int.
    return bool(container.format.flags & av.format.Flags.ts_discont.value)  # type: ignore[operator]


class _StreamClock:
    __slots__ = ("next_dts", "last_dts")

    def __init__(self) -> None:
        self.next_dts: Fraction | None = None  # where the stream should continue, seconds
        self.last_dts: Fraction | None = None  # its previous packet's (fixed) DTS, seconds


class ClockFixer:
    """Rewrites ``pts``/``dts`` of audio and video packets onto one continuous clock."""

    def __init__(self, container: av.container.InputContainer, *, enabled: bool | None = None):
        self.enabled = has_discontinuous_clock(container) if enabled is None else enabled
        self.offset = Fraction(0)  # seconds added to every timestamp from now on
        self.jumps = 0  # discontinuities corrected so far
        self._clocks: dict[int, _StreamClock] = {}
        self._last: Fraction | None = None  # the file's last packet DTS (fixed), seconds
        self._rates: dict[int, Fraction] = {}
        for stream in container.streams:
            if stream.type == "video":
                rate = stream.average_rate or stream.guessed_rate or stream.base_rate
                if rate:
                    self._rates[stream.index] = Fraction(rate)

    def fix(self, packet: av.Packet[StreamT]) -> av.Packet[StreamT]:
        """The packet, its timestamps moved by the current offset (updated first if this
        packet jumps). Packets of other kinds and packets without DTS pass unchanged."""
        if not self.enabled or packet.dts is None or packet.time_base is None:
            return packet
        stream = packet.stream
        if stream.type not in ("video", "audio"):
            return packet
        tb = packet.time_base
        clock = self._clocks.setdefault(stream.index, _StreamClock())
        dts = packet.dts * tb + self.offset
        delta: Fraction | None = None
        if clock.next_dts is not None:
            d = dts - clock.next_dts
            going_back = clock.last_dts is not None and dts + BACKWARD_TOLERANCE < clock.last_dts
            if abs(d) > DELTA_THRESHOLD or going_back:
                delta = d
        elif self._last is not None and abs(dts - self._last) > DELTA_THRESHOLD:
            delta = dts - self._last  # a stream's first packet, far from the file's clock
        if delta is not None:
            self.offset -= delta
            self.jumps += 1
            dts -= delta
        if self.offset:
            shift = round(self.offset / tb)
            pts = packet.pts
            packet.dts = packet.dts + shift
            if pts is not None:
                packet.pts = pts + shift
        duration = packet.duration * tb if packet.duration else self._frame_duration(stream)
        clock.next_dts = dts + duration
        clock.last_dts = dts
        self._last = dts
        return packet

    def fixed(self, packets: Iterable[av.Packet[StreamT]]) -> Iterable[av.Packet[StreamT]]:
        for packet in packets:
            yield self.fix(packet)

    def _frame_duration(self, stream: av.stream.Stream) -> Fraction:
        rate = self._rates.get(stream.index)
        return 1 / rate if rate else Fraction(0)


def packets(
    container: av.container.InputContainer, stream: StreamT
) -> Iterator[av.Packet[StreamT]]:
    """The packets of ``stream`` (flush packet included), on the continuous clock when the
    format's clock may jump. The fixer must see every audio and video packet, in file order,
    for all tasks to compute the same timeline, so all of them are demuxed then."""
    # Only `stream`'s packets are yielded (demux(stream), or the index test below); PyAV's
    # demux overloads cannot say so for a stream of a type variable: Packet[Stream], hence the casts.
    fixer = ClockFixer(container)
    if not fixer.enabled:
        yield from cast("Iterator[av.Packet[StreamT]]", container.demux(stream))
        return
    streams = [s for s in container.streams if s.type in ("video", "audio")]
    for packet in container.demux(*streams):
        if packet.stream.index == stream.index:
            yield cast("av.Packet[StreamT]", fixer.fix(packet))
        else:
            fixer.fix(packet)


MAX_BAD_PACKETS = 50  # undecodable packets skipped in one stream before the file counts as corrupt


@overload
def decode(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> Iterator[av.VideoFrame]: ...
@overload
def decode(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> Iterator[av.AudioFrame]: ...
def decode(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream | av.audio.stream.AudioStream,
) -> Iterator[av.VideoFrame | av.AudioFrame]:
    """The frames of ``stream`` on the continuous clock, decoded packet by packet: a few
    undecodable packets are skipped instead of failing the whole task."""
    bad = 0
    for packet in packets(container, stream):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            bad += 1
            if bad > MAX_BAD_PACKETS:
                raise
            continue
        yield from frames  # type: ignore[misc]  # a video/audio stream decodes to its kind of frame
