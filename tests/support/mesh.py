"""Runs real Streamify services in the test's event loop, wired to each other."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from streamify.core.config import Settings


@contextlib.asynccontextmanager
async def running_service(run: Callable[..., Awaitable[None]], settings: Settings):
    """Starts `run(settings, on_ready=..., stop_event=...)` and yields its `host:port`."""
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, on_ready=ready.set_result, stop_event=stop))
    done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # start-up failed: raise its error
    try:
        yield f"127.0.0.1:{ready.result()}"
    finally:
        stop.set()
        await task
