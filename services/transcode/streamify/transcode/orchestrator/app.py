"""Builds the transcode orchestrator from settings and runs it: TranscodeService (job control)
and TranscodeWorkerService (the worker streams) on one gRPC server, with the dispatcher, the
lease sweeper, the Metadata reporter and the "video uploaded" queue consumer in the
background."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Unpack

from streamify.core.config import Settings, TranscodeSettings
from streamify.core.db import make_engine, make_sessions
from streamify.core.event_cursor import SqlCursor
from streamify.core.metadata_client import MetadataClient
from streamify.core.queue import make_queue
from streamify.core.server import ServeOptions, ServiceRegistration, serve
from streamify.core.storage import make_cloudfront_client, make_s3_client
from streamify.core.video_events import VideoEventFollower
from streamify.transcode.orchestrator import schema
from streamify.transcode.orchestrator.consumer import UploadedConsumer
from streamify.transcode.orchestrator.deletions import (
    CdnInvalidation,
    DeletedVideoCleaner,
    MediaPurger,
)
from streamify.transcode.orchestrator.dispatch import Orchestrator
from streamify.transcode.orchestrator.models import EventCursorRow
from streamify.transcode.orchestrator.reporter import Reporter
from streamify.transcode.orchestrator.service import TranscodeService
from streamify.transcode.orchestrator.store import Store
from streamify.transcode.orchestrator.worker_stream import WorkerStreamService
from streamify.v1 import transcode_service_pb2_grpc, worker_service_pb2_grpc

SERVICE_NAME = "streamify.v1.TranscodeService"
WORKER_SERVICE_NAME = "streamify.v1.TranscodeWorkerService"


async def run(
    settings: Settings,
    *,
    options: TranscodeSettings | None = None,
    consume_queue: bool = True,
    stop_event: asyncio.Event | None = None,
    **serve_options: Unpack[ServeOptions],
) -> None:
    options = options or settings.transcode
    engine = make_engine(settings.resolved_database_url)
    schema.upgrade(engine)
    sessions = make_sessions(engine)
    store = Store(sessions, options, settings.media_bucket)
    s3 = make_s3_client(settings)
    metadata = MetadataClient(settings, identity="transcode")
    reporter = Reporter(metadata, store, options.progress_interval_seconds)
    orchestrator = Orchestrator(
        store=store, options=options, reporter=reporter, s3=s3, media_bucket=settings.media_bucket
    )
    queue = make_queue(settings, options.queue_name) if consume_queue else None
    stop = stop_event if stop_event is not None else asyncio.Event()

    async def close_streams_on_stop() -> None:
        # Before the server's grace period: end the worker streams without releasing their
        # leases, so the workers reconnect elsewhere and their results still count.
        await stop.wait()
        orchestrator.close()

    background = [
        asyncio.create_task(close_streams_on_stop(), name="transcode-stop-watch"),
        asyncio.create_task(orchestrator.run_dispatcher(), name="transcode-dispatcher"),
        asyncio.create_task(orchestrator.run_sweeper(), name="transcode-sweeper"),
        asyncio.create_task(reporter.run(), name="transcode-reporter"),
    ]
    cdn = None
    if settings.cdn_cloudfront_distribution_id:
        cdn = CdnInvalidation(make_cloudfront_client(), settings.cdn_cloudfront_distribution_id)
    purge = MediaPurger(s3, settings.media_bucket, cdn, "first")
    deletions = [
        VideoEventFollower(
            metadata,
            SqlCursor(sessions, EventCursorRow, "deleted-videos"),
            DeletedVideoCleaner(orchestrator, purge),
            poll_seconds=settings.video_event_poll_seconds,
        ),
        VideoEventFollower(
            metadata,
            SqlCursor(sessions, EventCursorRow, "deleted-videos-again"),
            purge.again("again"),
            min_age_seconds=options.deleted_media_purge_again_seconds,
            poll_seconds=settings.video_event_poll_seconds,
        ),
    ]
    for follower in deletions:
        background.append(asyncio.create_task(follower.run(), name="transcode-deleted-videos"))
    if queue is not None:
        consumer = UploadedConsumer(queue, orchestrator)
        background.append(asyncio.create_task(consumer.run(), name="transcode-queue-consumer"))
    servicer = TranscodeService(
        orchestrator=orchestrator, metadata=metadata, s3=s3, uploads_bucket=settings.uploads_bucket
    )
    try:
        await serve(
            settings,
            [
                ServiceRegistration(
                    name=SERVICE_NAME,
                    add_to_server=transcode_service_pb2_grpc.add_TranscodeServiceServicer_to_server,
                    servicer=servicer,
                ),
                ServiceRegistration(
                    name=WORKER_SERVICE_NAME,
                    add_to_server=worker_service_pb2_grpc.add_TranscodeWorkerServiceServicer_to_server,
                    servicer=WorkerStreamService(orchestrator),
                ),
            ],
            stop_event=stop,
            **serve_options,
        )
    finally:
        orchestrator.close()
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await orchestrator.aclose()
        if queue is not None:
            await queue.close()
        await metadata.close()
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """``streamify-orchestrator [--port N] [--metrics-port N]``: the image's entry point."""
    from streamify.core.entrypoint import serve_main

    return serve_main(
        "streamify-orchestrator",
        "The Transcode orchestrator (gRPC): transcode jobs, and the streams its workers connect to.",
        run,
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
