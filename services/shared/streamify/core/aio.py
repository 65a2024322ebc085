"""asyncio helpers shared by the services' background loops."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_for_event(event: asyncio.Event, timeout: float) -> None:
    """Returns when `event` is set or after `timeout` seconds.

    Not `asyncio.wait_for(event.wait(), timeout)`: on Python 3.11 that swallows a cancellation
    arriving just after the event fired, and a `while True` loop around it then never stops
    (seen as a hung orchestrator shutdown).
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
