"""How the Upload and Transcode services talk to the Metadata service (as a service identity)."""

from __future__ import annotations

from streamify.core import token_keys
from streamify.core.config import Settings
from streamify.core.server import client_channel, service_call_metadata
from streamify.v1 import metadata_service_pb2 as api
from streamify.v1 import metadata_service_pb2_grpc
from streamify.v1.video_pb2 import VISIBILITY_UNSPECIFIED, Video, Visibility

# Metadata calls from services are idempotent (request ids, repeated transitions accepted), so a
# short retry on UNAVAILABLE rides over a replica restart.
_TIMEOUT_SECONDS = 10.0

CallMetadata = tuple[tuple[str, str], ...]


class MetadataClient:
    def __init__(self, settings: Settings, identity: str) -> None:
        self._settings = settings
        self._identity = identity
        token_keys.signing_key(settings, identity)  # a missing key stops the start, not a call
        self._channel = client_channel(settings.metadata_target)
        self._stub = metadata_service_pb2_grpc.MetadataServiceStub(self._channel)

    def _auth(self) -> CallMetadata:
        return service_call_metadata(self._settings, self._identity)

    async def create_video(
        self,
        *,
        owner: str,
        title: str,
        description: str,
        size_bytes: int,
        request_id: str,
        visibility: Visibility.ValueType = VISIBILITY_UNSPECIFIED,
    ) -> Video:
        return await self._stub.CreateVideo(
            api.CreateVideoRequest(
                video=Video(title=title, description=description, visibility=visibility),
                owner=owner,
                source_size_bytes=size_bytes,
                request_id=request_id,
            ),
            metadata=self._auth(),
            timeout=_TIMEOUT_SECONDS,
        )

    async def get_video(self, name: str) -> Video:
        return await self._stub.GetVideo(
            api.GetVideoRequest(name=name), metadata=self._auth(), timeout=_TIMEOUT_SECONDS
        )

    async def update_status(self, request: api.UpdateVideoStatusRequest) -> Video:
        return await self._stub.UpdateVideoStatus(
            request, metadata=self._auth(), timeout=_TIMEOUT_SECONDS
        )

    async def list_video_events(self, after: int, page_size: int) -> list[api.VideoEvent]:
        reply = await self._stub.ListVideoEvents(
            api.ListVideoEventsRequest(after_sequence=after, page_size=page_size),
            metadata=self._auth(),
            timeout=_TIMEOUT_SECONDS,
        )
        return list(reply.events)

    async def close(self) -> None:
        await self._channel.close()
