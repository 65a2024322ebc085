"""Redis is an optimisation, never a dependency: the Metadata service keeps answering from the
database while Redis is down, and uses the cache again once it is back."""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from prometheus_client import REGISTRY

from streamify.v1 import metadata_service_pb2 as api
from streamify.v1.video_pb2 import Video
from tests.support.metadata import bearer, running_metadata, service_settings

pytestmark = pytest.mark.integration
ALICE = bearer("alice")


def cache_requests(result: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "streamify_cache_requests_total", {"backend": "redis", "result": result}
        )
        or 0.0
    )


async def test_every_rpc_succeeds_with_redis_stopped_and_the_cache_recovers(
    tmp_path, private_redis
):
    settings = service_settings(
        data_dir=tmp_path,
        redis_url=private_redis.url,
        cache_breaker_cooldown_seconds=0.2,
    )
    async with running_metadata(settings) as running:
        stub = running.stub
        video = await stub.CreateVideo(
            api.CreateVideoRequest(video=Video(title="before")), metadata=ALICE
        )
        await stub.GetVideo(api.GetVideoRequest(name=video.name), metadata=ALICE)
        hits_before = cache_requests("hit")
        await stub.GetVideo(api.GetVideoRequest(name=video.name), metadata=ALICE)
        assert cache_requests("hit") == hits_before + 1  # served from Redis

        private_redis.stop()
        other = await stub.CreateVideo(
            api.CreateVideoRequest(video=Video(title="during")), metadata=ALICE
        )
        for _ in range(20):
            got = await stub.GetVideo(api.GetVideoRequest(name=video.name), metadata=ALICE)
            assert got.title == "before"
        updated = await stub.UpdateVideo(
            api.UpdateVideoRequest(
                video=Video(name=video.name, title="changed while Redis was down"),
                update_mask=FieldMask(paths=["title"]),
            ),
            metadata=ALICE,
        )
        listed = await stub.ListVideos(api.ListVideosRequest(), metadata=ALICE)
        assert {v.name for v in listed.videos} == {video.name, other.name}
        assert cache_requests("skipped") > 0  # the breaker kept calls away from the dead Redis

        private_redis.start()  # comes back with the entry cached before the update
        for _ in range(100):
            got = await stub.GetVideo(api.GetVideoRequest(name=video.name), metadata=ALICE)
            assert got.title == updated.title  # never the stale cached "before"
            if cache_requests("hit") > hits_before + 1:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the cache never came back into use after Redis restarted")
