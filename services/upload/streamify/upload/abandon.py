"""Ending an upload that will not be completed (its owner aborted it, or it expired)."""

from __future__ import annotations

from streamify.core.db import run_in_thread
from streamify.upload.models import UploadRow
from streamify.upload.storage import UploadStorage
from streamify.upload.store import UploadStore


async def abort_upload(
    store: UploadStore, storage: UploadStorage, row: UploadRow, reason: str
) -> None:
    """Discards the bytes (wherever they got to), marks the upload ABORTED and queues the
    video's FAILED status."""
    if row.multipart:
        await run_in_thread(storage.abort_multipart, row.object_key, row.s3_upload_id)
    for key in {row.object_key, row.source_key}:
        await run_in_thread(storage.delete, key)
    await run_in_thread(store.abort, row, reason)
