"""One user cannot hold an unbounded number of WatchVideo streams open (each costs the server
a task and a read a second): beyond the limit the call is RESOURCE_EXHAUSTED with the reason,
a closed stream frees its slot, and other users are not affected. Against a real Metadata
server."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from streamify.core.errors import details_of
from streamify.v1 import metadata_service_pb2 as api
from streamify.v1.video_pb2 import Video, Visibility
from tests.support.metadata import bearer, running_metadata, service_settings

pytestmark = pytest.mark.security
ALICE, BOB = bearer("alice"), bearer("bob")
LIMIT = 3


async def opened(stub, name: str, who):
    """A WatchVideo stream that has answered once (so the server holds it)."""
    call = stub.WatchVideo(api.WatchVideoRequest(name=name), metadata=who)
    await call.read()
    return call


async def test_a_user_holds_at_most_the_limit_of_watch_streams(tmp_path):
    settings = service_settings(data_dir=tmp_path, watch_max_streams_per_user=LIMIT)
    async with running_metadata(settings) as metadata:
        stub = metadata.stub
        video = await stub.CreateVideo(
            api.CreateVideoRequest(video=Video(title="t", visibility=Visibility.VISIBILITY_PUBLIC)),
            metadata=ALICE,
        )  # UPLOADING: a watch of it stays open
        streams = [await opened(stub, video.name, ALICE) for _ in range(LIMIT)]
        refused = stub.WatchVideo(api.WatchVideoRequest(name=video.name), metadata=ALICE)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await refused.read()
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert details_of(info.value)[0].reason == "TOO_MANY_WATCHES"
        assert "close a stream" in info.value.details()
        # another user is not affected
        bobs = await opened(stub, video.name, BOB)
        # a closed stream frees its slot
        streams.pop().cancel()
        for _ in range(100):
            try:
                streams.append(await opened(stub, video.name, ALICE))
                break
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                await asyncio.sleep(0.05)  # the server has not seen the cancellation yet
        assert len(streams) == LIMIT
        for call in [*streams, bobs]:
            call.cancel()
