"""Builds the Upload service from settings and runs it with its relay and sweeper."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Unpack

from streamify.core.config import Settings
from streamify.core.db import make_engine, make_sessions
from streamify.core.event_cursor import SqlCursor
from streamify.core.metadata_client import MetadataClient
from streamify.core.queue import make_queue
from streamify.core.server import ServeOptionsWithStop, ServiceRegistration, serve
from streamify.core.storage import make_s3_client
from streamify.core.video_events import VideoEventFollower
from streamify.upload import schema
from streamify.upload.deletions import DeletedVideoCleaner
from streamify.upload.models import EventCursorRow
from streamify.upload.outbox import OutboxRelay
from streamify.upload.service import UploadService
from streamify.upload.storage import UploadStorage
from streamify.upload.store import UploadStore
from streamify.upload.sweeper import StaleUploadSweeper
from streamify.v1 import upload_service_pb2_grpc

SERVICE_NAME = "streamify.v1.UploadService"


async def run(settings: Settings, **serve_options: Unpack[ServeOptionsWithStop]) -> None:
    engine = make_engine(settings.resolved_database_url)
    schema.upgrade(engine)
    sessions = make_sessions(engine)
    limits = settings.upload
    storage = UploadStorage(
        make_s3_client(settings),
        make_s3_client(settings, public=True),
        settings.uploads_bucket,
        limits.url_ttl_seconds,
    )
    metadata = MetadataClient(settings, identity="upload")
    queue = make_queue(settings)
    relay = OutboxRelay(sessions, metadata, queue)
    store = UploadStore(sessions)
    sweeper = StaleUploadSweeper(store, storage, relay, limits.expiry_seconds)
    servicer = UploadService(
        store=store, storage=storage, metadata=metadata, relay=relay, limits=limits
    )
    deletions = VideoEventFollower(
        metadata,
        SqlCursor(sessions, EventCursorRow, "deleted-videos"),
        DeletedVideoCleaner(store, storage, relay),
        poll_seconds=settings.video_event_poll_seconds,
    )
    background = [
        asyncio.create_task(relay.run(), name="upload-outbox-relay"),
        asyncio.create_task(deletions.run(), name="upload-deleted-videos"),
        asyncio.create_task(sweeper.run(limits.sweep_interval_seconds), name="upload-sweeper"),
    ]
    try:
        await serve(
            settings,
            [
                ServiceRegistration(
                    name=SERVICE_NAME,
                    add_to_server=upload_service_pb2_grpc.add_UploadServiceServicer_to_server,
                    servicer=servicer,
                )
            ],
            **serve_options,
        )
    finally:
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await queue.close()
        await metadata.close()
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """``streamify-upload [--port N] [--metrics-port N]``: the image's entry point."""
    from streamify.core.entrypoint import serve_main

    return serve_main(
        "streamify-upload",
        "The Upload service (gRPC): pre-signed, resumable uploads to object storage.",
        run,
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
