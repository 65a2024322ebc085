"""Wakes WatchVideo streams when their video changes in this process.

Changes made through another replica are picked up by the watchers' periodic re-read, so the
notifier is a latency optimisation, not the only path.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from streamify.core.aio import wait_for_event


class VideoChanges:
    def __init__(self) -> None:
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    def notify(self, video_id: str) -> None:
        for event in self._waiters.get(video_id, ()):
            event.set()

    async def wait(self, video_id: str, timeout: float) -> None:
        """Returns after the next change of the video, or after `timeout` seconds."""
        event = asyncio.Event()
        waiters = self._waiters[video_id]
        waiters.add(event)
        try:
            await wait_for_event(event, timeout)
        finally:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(video_id, None)
