"""The gateway's media origin signs every request it forwards to the bucket (SigV4 with the
gateway's credentials), so what reaches it is the boundary: viewers only GET and HEAD videos'
objects, and even a leaked internal token opens no write and no other part of the bucket.

Against a real Envoy in front of a real SeaweedFS that enforces signatures."""

from __future__ import annotations

import asyncio

import pytest
import requests

from streamify.gateway.config import INTERNAL_HEADER
from streamify.v1 import metadata_service_pb2 as api
from streamify.v1.video_pb2 import Video, Visibility
from tests.support.media_gateway import media_gateway
from tests.support.metadata import bearer, running_metadata, service_settings

pytestmark = pytest.mark.security
LEAKED = "a-leaked-internal-token-0123456789"


@pytest.fixture(scope="module")
async def media(seaweedfs, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("media-origin")
    settings = service_settings(data_dir=tmp, **seaweedfs.settings_overrides())
    async with running_metadata(settings) as metadata:
        video = await metadata.stub.CreateVideo(
            api.CreateVideoRequest(
                video=Video(title="public", visibility=Visibility.VISIBILITY_PUBLIC)
            ),
            metadata=bearer("alice"),
        )
        async with media_gateway(
            tmp, seaweedfs, settings, metadata.target, 301, internal_token=LEAKED
        ) as gw:
            gw.video_id = video.name.split("/")[1]
            yield gw


def _exists(media, bucket: str, key: str) -> bool:
    try:
        media.s3.head_object(Bucket=bucket, Key=key)
        return True
    except media.s3.exceptions.ClientError:
        return False


def _origin_key(path: str) -> str:
    """The object a request for `path` asks the origin for: the gateway's request rewrite turns
    /media/{key} into /{bucket}/{key} by dropping the first len("/media/") characters, so a
    request sent to the internal route directly lands on that part of its own path."""
    return path[len("/media/") :]


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "PATCH"])
async def test_a_viewer_cannot_write_or_delete_through_media(media, seaweedfs, method):
    bucket, key = seaweedfs.media_bucket, f"videos/{media.video_id}/seg_00001.m4s"
    media.s3.put_object(Bucket=bucket, Key=key, Body=b"original")
    url = f"http://127.0.0.1:{media.port}/media/{key}"
    reply = await asyncio.to_thread(requests.request, method, url, data=b"evil", timeout=30)
    assert reply.status_code in (403, 404, 405), reply.status_code
    assert media.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"original"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "POST"])
async def test_a_leaked_internal_token_opens_no_write(media, seaweedfs, method):
    bucket = seaweedfs.media_bucket
    path = f"/{bucket}/videos/{media.video_id}/written-{method.lower()}.m4s"
    target = _origin_key(path)
    if method == "DELETE":
        media.s3.put_object(Bucket=bucket, Key=target, Body=b"keep")
    reply = await asyncio.to_thread(
        requests.request,
        method,
        f"http://127.0.0.1:{media.port}{path}",
        data=b"evil",
        headers={INTERNAL_HEADER: LEAKED},
        timeout=30,
    )
    assert reply.status_code == 404, (reply.status_code, reply.text[:300])
    if method == "DELETE":
        assert media.s3.get_object(Bucket=bucket, Key=target)["Body"].read() == b"keep"
    else:
        assert not _exists(media, bucket, target)


async def test_a_leaked_internal_token_reads_nothing_outside_the_videos(media, seaweedfs):
    bucket = seaweedfs.media_bucket
    path = f"/{bucket}/operator/notes.txt"
    media.s3.put_object(Bucket=bucket, Key=_origin_key(path), Body=b"not for viewers")
    reply = await asyncio.to_thread(
        requests.get,
        f"http://127.0.0.1:{media.port}{path}",
        headers={INTERNAL_HEADER: LEAKED},
        timeout=30,
    )
    assert reply.status_code == 404 and b"not for viewers" not in reply.content
