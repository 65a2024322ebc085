"""Following the Metadata service's feed of video events (ListVideoEvents).

A service that must clean up after a video (the Upload service its uploads and sources, the
Transcode service its job and media) runs a follower: it asks for the events after the last
one it handled, handles each in order and then stores its position, in its own database. A
crash between the two repeats an event, never skips one, so every handler is idempotent.

`min_age_seconds` makes a follower that lags: it handles an event only once it is that old
(the Transcode service's second pass over a deleted video's media, after any upload that was
in flight has ended).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from streamify.core.backoff import backoff_delay
from streamify.core.clock import now_us
from streamify.v1.metadata_service_pb2 import VideoEvent

if TYPE_CHECKING:
    from streamify.core.metadata_client import MetadataClient

log = logging.getLogger(__name__)
PAGE_SIZE = 100

Handler = Callable[[VideoEvent], Awaitable[None]]


class Cursor(Protocol):
    name: str

    def load(self) -> int: ...

    def save(self, sequence: int) -> None: ...


class MemoryCursor:
    """A position that starts at the beginning of the feed in every process."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._sequence = 0

    def load(self) -> int:
        return self._sequence

    def save(self, sequence: int) -> None:
        self._sequence = max(self._sequence, sequence)


class VideoEventFollower:
    def __init__(
        self,
        metadata: MetadataClient,
        cursor: Cursor,
        handle: Handler,
        *,
        min_age_seconds: float = 0.0,
        poll_seconds: float = 2.0,
    ) -> None:
        self._metadata = metadata
        self._cursor = cursor
        self._handle = handle
        self._min_age_us = int(min_age_seconds * 1_000_000)
        self._poll = poll_seconds

    async def follow_once(self) -> int:
        """Handles the events that are due, in order; how many. A failing handler raises, and
        its event is handled again next time."""
        after = await asyncio.to_thread(self._cursor.load)
        events = await self._metadata.list_video_events(after, PAGE_SIZE)
        handled = 0
        for event in events:
            if event.create_time.ToMicroseconds() > now_us() - self._min_age_us:
                break  # not due yet, nor is anything after it
            await self._handle(event)
            await asyncio.to_thread(self._cursor.save, event.sequence)
            handled += 1
        return handled

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                handled = await self.follow_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Metadata away, or a handler failed
                log.warning("following video events (%s) failed: %s", self._cursor.name, exc)
                await asyncio.sleep(backoff_delay(failures, base=self._poll, cap=60.0))
                failures += 1
                continue
            failures = 0
            if handled < PAGE_SIZE:  # caught up (or the rest is not due): wait
                await asyncio.sleep(self._poll)
