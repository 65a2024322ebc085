"""Aborts uploads that were never completed: their parts are discarded in storage and their
videos end FAILED with a reason (the outbox relay carries that to the Metadata service).

It also deletes incoming single-PUT objects no pending upload owns: a PUT replayed after
CompleteUpload or AbortUpload, while its URL was still valid, lands there and is never read.
"""

from __future__ import annotations

import asyncio
import logging
import time

from streamify.core import storage_keys
from streamify.core.db import run_in_thread
from streamify.upload.abandon import abort_upload
from streamify.upload.outbox import OutboxRelay
from streamify.upload.storage import UploadStorage
from streamify.upload.store import UploadStore

log = logging.getLogger(__name__)
ORPHAN_BATCH = 500


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

    async def sweep_orphans(self) -> int:
        """Deletes incoming objects that no pending upload writes to; how many."""
        return await run_in_thread(self._delete_orphans)

    def _delete_orphans(self) -> int:
        deleted = 0
        batch: list[str] = []
        for key in self._storage.keys_under(storage_keys.INCOMING_ROOT):
            batch.append(key)
            if len(batch) == ORPHAN_BATCH:
                deleted += self._delete_unowned(batch)
                batch = []
        if batch:
            deleted += self._delete_unowned(batch)
        if deleted:
            log.info("deleted %d incoming objects no pending upload owns", deleted)
        return deleted

    def _delete_unowned(self, keys: list[str]) -> int:
        owned = self._store.pending_keys(keys)
        orphans = [key for key in keys if key not in owned]
        for key in orphans:
            self._storage.delete(key)
        return len(orphans)

    async def run(self, interval_seconds: float) -> None:
        while True:
            try:
                await self.sweep()
                await self.sweep_orphans()
            except Exception:  # the next round tries again
                log.exception("sweeping stale uploads failed")
            await asyncio.sleep(interval_seconds)
