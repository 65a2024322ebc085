"""Aborts uploads that were never completed: their parts are discarded in storage and their
videos end FAILED with a reason (the outbox relay carries that to the Metadata service)."""

from __future__ import annotations

import asyncio
import logging
import time

from streamify.core.db import run_in_thread
from streamify.upload.abandon import abort_upload
from streamify.upload.outbox import OutboxRelay
from streamify.upload.storage import UploadStorage
from streamify.upload.store import UploadStore

log = logging.getLogger(__name__)


class StaleUploadSweeper:
    def __init__(
        self,
        store: UploadStore,
        storage: UploadStorage,
        relay: OutboxRelay,
        expiry_seconds: float,
    ) -> None:
        self._store = store
        self._storage = storage
        self._relay = relay
        self._expiry_hours = expiry_seconds / 3600

    async def sweep(self) -> int:
        expired = await run_in_thread(self._store.expired, time.time_ns() // 1000)
        for row in expired:
            await abort_upload(
                self._store,
                self._storage,
                row,
                (f"the upload expired: it was not completed within {self._expiry_hours:g} hours"),
            )
        if expired:
            log.info("aborted %d expired uploads", len(expired))
            self._relay.kick()
        return len(expired)

    async def run(self, interval_seconds: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # the next round tries again
                log.exception("sweeping stale uploads failed")
            await asyncio.sleep(interval_seconds)
