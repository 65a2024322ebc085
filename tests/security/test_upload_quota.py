"""The unfinished-uploads quota holds under concurrency: a user firing many CreateUpload calls
at once gets exactly the quota, the rest RESOURCE_EXHAUSTED with the reason, and no video of a
refused call is left UPLOADING for ever. Against the real Upload and Metadata services, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from streamify.core.errors import details_of
from streamify.v1 import metadata_service_pb2 as meta
from streamify.v1 import upload_service_pb2 as api
from streamify.v1.video_pb2 import VideoStatus
from tests.support.metadata import bearer
from tests.support.uploads import started_mesh

pytestmark = pytest.mark.security
ALICE = bearer("alice")
QUOTA, CALLS = 5, 24


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_concurrent_create_uploads_get_exactly_the_quota(
    tmp_path, seaweedfs, postgres_server, database
):
    extra = {"database_url": postgres_server.new_database()} if database == "postgres" else {}
    async with started_mesh(
        tmp_path, seaweedfs, upload_max_pending_per_user=QUOTA, **extra
    ) as mesh:

        async def create(i: int):
            try:
                return await mesh.uploads.CreateUpload(
                    api.CreateUploadRequest(
                        file_name=f"{i}.mp4", size_bytes=100, content_type="video/mp4"
                    ),
                    metadata=ALICE,
                )
            except grpc.aio.AioRpcError as exc:
                return exc

        results = await asyncio.gather(*(create(i) for i in range(CALLS)))
        created = [r for r in results if isinstance(r, api.Upload)]
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(created) == QUOTA, [str(r) for r in refused[:3]]
        assert {(e.code(), details_of(e)[0].reason) for e in refused} == {
            (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_PENDING_UPLOADS")
        }
        listed = await mesh.videos.ListVideos(meta.ListVideosRequest(page_size=100), metadata=ALICE)
        uploading = [v for v in listed.videos if v.status == VideoStatus.VIDEO_STATUS_UPLOADING]
        assert sorted(v.name for v in uploading) == sorted(u.video for u in created)
        assert all(
            "too many unfinished uploads" in v.failure_reason
            for v in listed.videos
            if v.status == VideoStatus.VIDEO_STATUS_FAILED
        )
