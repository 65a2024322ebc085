"""Builds the Metadata service from settings and runs it."""

from __future__ import annotations

import hashlib
import hmac
from typing import Unpack

from streamify.core.auth import media_grant_key, signing_key
from streamify.core.cache import Cache, make_cache
from streamify.core.config import Settings
from streamify.core.db import make_engine, make_sessions
from streamify.core.server import ServeOptionsWithStop, ServiceRegistration, serve
from streamify.metadata import schema
from streamify.metadata.changes import VideoChanges
from streamify.metadata.page_tokens import PageTokenCodec
from streamify.metadata.reader import VideoReader
from streamify.metadata.service import MetadataService
from streamify.metadata.store import VideoStore
from streamify.v1 import metadata_service_pb2_grpc

SERVICE_NAME = "streamify.v1.MetadataService"


def page_token_key(settings: Settings) -> bytes:
    if settings.page_token_secret is not None:
        return settings.page_token_secret.get_secret_value().encode()
    return hmac.new(signing_key(settings), b"streamify page tokens", hashlib.sha256).digest()


def build(settings: Settings) -> tuple[MetadataService, Cache]:
    """The servicer and the cache it owns (the caller closes the cache)."""
    engine = make_engine(settings.resolved_database_url)
    schema.upgrade(engine)
    store = VideoStore(make_sessions(engine))
    cache = make_cache(settings)
    reader = VideoReader(
        store, cache, cdn_base_url=settings.cdn_base_url,
        ttl=settings.cache_ttl_seconds, negative_ttl=settings.cache_negative_ttl_seconds,
    )
    servicer = MetadataService(
        store=store, reader=reader, changes=VideoChanges(),
        page_tokens=PageTokenCodec(page_token_key(settings)), cdn_base_url=settings.cdn_base_url,
        grant_key=media_grant_key(settings), grant_ttl_seconds=settings.media_grant_ttl_seconds,
        grant_all_videos=settings.media_grant_all_videos,
    )
    return servicer, cache


def registration(servicer: MetadataService) -> ServiceRegistration:
    return ServiceRegistration(
        name=SERVICE_NAME,
        add_to_server=metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server,
        servicer=servicer,
    )


async def run(settings: Settings, **serve_options: Unpack[ServeOptionsWithStop]) -> None:
    servicer, cache = build(settings)
    try:
        await serve(settings, [registration(servicer)], **serve_options)
    finally:
        await cache.close()
