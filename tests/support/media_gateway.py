"""Envoy with the /media route as the gateway runs it: a real SeaweedFS origin (SigV4-signed
requests), Envoy's cache, and the grant check of a real AuthzServer that asks Metadata."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from streamify.core.config import Settings
from streamify.core.server import service_call_metadata
from streamify.core.shared_secrets import media_grant_key
from streamify.gateway.authz import AuthzServer, MediaAuthorizer, metadata_lookup
from streamify.gateway.config import Endpoint, GatewayConfig, MediaConfig, write
from streamify.gateway.envoy import Envoy
from tests.support.servers import free_port


@dataclass
class MediaGateway:
    envoy: Envoy
    port: int  # Envoy's listener: http://127.0.0.1:{port}/media/...
    s3: Any  # a boto3 client of the origin, to put objects behind the gateway


@contextlib.asynccontextmanager
async def media_gateway(
    tmp: Path,
    seaweedfs,
    settings: Settings,
    metadata_target: str,
    base_id: int,
    internal_token: str | None = None,
) -> AsyncIterator[MediaGateway]:
    """`base_id`: Envoy's shared-memory id, distinct per Envoy running at the same time;
    `internal_token`: the origin route's token (default: a random one per process)."""
    lookup = metadata_lookup(metadata_target, lambda: service_call_metadata(settings, "gateway"))
    async with AuthzServer(MediaAuthorizer(media_grant_key(settings), lookup)) as authz:
        port, admin = free_port(), free_port()
        cfg = GatewayConfig.local(
            {"metadata": [metadata_target]},
            listen_port=port,
            admin_port=admin,
            media=MediaConfig(
                origin_url=seaweedfs.endpoint_url,
                bucket=seaweedfs.media_bucket,
                access_key_id=seaweedfs.access_key,
                secret_access_key=seaweedfs.secret_key,
                authz=Endpoint("127.0.0.1", authz.port),
                internal_token=internal_token,
            ),
        )
        envoy = Envoy(write(cfg, tmp / "envoy.yaml"), admin, base_id=base_id)
        await asyncio.to_thread(envoy.start)
        s3 = boto3.client(
            "s3",
            endpoint_url=seaweedfs.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=seaweedfs.access_key,
            aws_secret_access_key=seaweedfs.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        try:
            yield MediaGateway(envoy, port, s3)
        finally:
            await asyncio.to_thread(envoy.stop)
