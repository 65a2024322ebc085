"""How many WatchVideo streams one user may hold open on one replica: each costs a task and a
re-read a second, so a script opening thousands of them must not take the service down."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from streamify.core import errors
from streamify.core.auth import Principal


class WatchLimit:
    def __init__(self, per_user: int) -> None:
        self._per_user = per_user
        self._open: Counter[str] = Counter()

    @contextlib.contextmanager
    def slot(self, principal: Principal) -> Iterator[None]:
        """Held for the life of one stream; RESOURCE_EXHAUSTED when the user has no slot left.
        Services are not limited."""
        if principal.is_service:
            yield
            return
        user = principal.subject
        if self._open[user] >= self._per_user:
            raise errors.resource_exhausted(
                f"you already watch {self._open[user]} videos at once, the most one user may; "
                "close a stream first",
                reason="TOO_MANY_WATCHES",
            )
        self._open[user] += 1
        try:
            yield
        finally:
            self._open[user] -= 1
            if not self._open[user]:
                del self._open[user]
