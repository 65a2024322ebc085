"""Time as the services store it: integer microseconds since the Unix epoch (database columns),
and its protobuf forms (`google.protobuf.Timestamp` for instants, `Duration` for lengths)."""

from __future__ import annotations

import time

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["duration_of", "microseconds_of", "now_us", "timestamp_of"]

_US = 1_000_000


def now_us() -> int:
    return time.time_ns() // 1000


def timestamp_of(us: int) -> Timestamp:
    return Timestamp(seconds=us // _US, nanos=(us % _US) * 1000)


def duration_of(us: int) -> Duration:
    return Duration(seconds=us // _US, nanos=(us % _US) * 1000)


def microseconds_of(value: Timestamp | Duration) -> int:
    seconds: int = value.seconds
    nanos: int = value.nanos
    return seconds * _US + nanos // 1000
