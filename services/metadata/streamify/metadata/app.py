"""Builds the Metadata service from settings and runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Unpack

from streamify.core.cache import Cache, make_cache
from streamify.core.clock import now_us
from streamify.core.config import Settings
from streamify.core.db import make_engine, make_sessions, run_in_thread
from streamify.core.server import ServeOptionsWithStop, ServiceRegistration, serve
from streamify.core.shared_secrets import media_grant_key, page_token_key
from streamify.metadata import schema
from streamify.metadata.changes import VideoChanges
from streamify.metadata.page_tokens import PageTokenCodec
from streamify.metadata.reader import VideoReader
from streamify.metadata.service import MetadataService
from streamify.metadata.store import VideoStore
from streamify.metadata.watch_limit import WatchLimit
from streamify.v1 import metadata_service_pb2_grpc

SERVICE_NAME = "streamify.v1.MetadataService"
log = logging.getLogger(__name__)


def build(settings: Settings) -> tuple[MetadataService, Cache]:
    """The servicer and the cache it owns (the caller closes the cache)."""
    engine = make_engine(settings.resolved_database_url)
    schema.upgrade(engine)
    store = VideoStore(make_sessions(engine))
    cache = make_cache(settings)
    reader = VideoReader(
        store,
        cache,
        cdn_base_url=settings.cdn_base_url,
        ttl=settings.cache.ttl_seconds,
        negative_ttl=settings.cache.negative_ttl_seconds,
    )
    servicer = MetadataService(
        store=store,
        reader=reader,
        changes=VideoChanges(),
        page_tokens=PageTokenCodec(page_token_key(settings)),
        cdn_base_url=settings.cdn_base_url,
        grant_key=media_grant_key(settings),
        grant_ttl_seconds=settings.media_grant.ttl_seconds,
        grant_all_videos=settings.media_grant.all_videos,
        watch_limit=WatchLimit(settings.watch_max_streams_per_user),
    )
    return servicer, cache


def registration(servicer: MetadataService) -> ServiceRegistration:
    return ServiceRegistration(
        name=SERVICE_NAME,
        add_to_server=metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server,
        servicer=servicer,
    )


async def sweep_old_rows(store: VideoStore, key_ttl: float, event_retention: float) -> None:
    """Forgets request ids and video events older than their lifetimes, every quarter of the
    shorter one (at most hourly), so neither table grows for ever; a retry that late creates
    anew."""
    interval = min(key_ttl / 4, event_retention / 4, 3600.0)
    while True:
        try:
            keys = await run_in_thread(
                store.delete_idempotency_keys_before, now_us() - int(key_ttl * 1e6)
            )
            events = await run_in_thread(
                store.delete_events_before, now_us() - int(event_retention * 1e6)
            )
            if keys or events:
                log.info("forgot %d request ids and %d video events", keys, events)
        except Exception:
            log.exception("sweeping request ids and video events failed")
        await asyncio.sleep(interval)


async def run(settings: Settings, **serve_options: Unpack[ServeOptionsWithStop]) -> None:
    servicer, cache = build(settings)
    sweeper = asyncio.create_task(
        sweep_old_rows(
            servicer.store,
            settings.idempotency_key_ttl_seconds,
            settings.video_event_retention_seconds,
        ),
        name="old-rows-sweeper",
    )
    try:
        await serve(settings, [registration(servicer)], **serve_options)
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await cache.close()


def main(argv: list[str] | None = None) -> int:
    """``streamify-metadata [--port N] [--metrics-port N]``: the image's entry point."""
    from streamify.core.entrypoint import serve_main

    return serve_main(
        "streamify-metadata",
        "The Metadata service (gRPC): videos, their status and playback URLs.",
        run,
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
