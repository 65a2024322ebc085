"""Runs a real Metadata service in the test's event loop and gives clients for it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import grpc

from streamify.core.config import Settings
from streamify.metadata import app
from streamify.v1 import metadata_service_pb2_grpc
from tests.support.keys import SECRET_SETTINGS, bearer
from tests.support.mesh import running_service

__all__ = ["RunningMetadata", "bearer", "running_metadata", "service_settings"]


def service_settings(**overrides) -> Settings:
    values = dict(SECRET_SETTINGS, grpc_port=0, log_format="text", log_level="WARNING")
    values.update(overrides)
    return Settings(**values)


@dataclass
class RunningMetadata:
    target: str
    channel: grpc.aio.Channel
    stub: metadata_service_pb2_grpc.MetadataServiceStub


@contextlib.asynccontextmanager
async def running_metadata(settings: Settings):
    async with running_service(app.run, settings) as target:
        channel = grpc.aio.insecure_channel(target)
        try:
            yield RunningMetadata(
                target, channel, metadata_service_pb2_grpc.MetadataServiceStub(channel)
            )
        finally:
            await channel.close()
