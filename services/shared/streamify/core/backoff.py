"""How long to wait before a retry: exponential, capped, with "equal jitter" (between half and
all of base * 2**attempt), so clients spread out but never retry at once. Every retry loop of
Streamify (the upload client, the worker's reconnects, the load test's users) uses this one."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["backoff_delay"]


def backoff_delay(
    attempt: int, *, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before retry number `attempt` (0 = the first retry)."""
    ceiling: float = min(cap, base * (2 ** min(max(attempt, 0), 32)))
    jitter: float = rand()
    return ceiling / 2 + jitter * ceiling / 2
