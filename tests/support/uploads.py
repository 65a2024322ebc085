"""The Upload and Metadata services over real gRPC channels, on a real SeaweedFS, for the tests
of uploads (integration) and of their boundaries (security)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

import grpc

from streamify.core import storage_keys
from streamify.core.queue import make_queue
from streamify.core.storage import make_s3_client
from streamify.metadata import app as metadata_app
from streamify.upload import app as upload_app
from streamify.v1 import metadata_service_pb2 as meta
from streamify.v1 import metadata_service_pb2_grpc, upload_service_pb2_grpc
from streamify.v1 import upload_service_pb2 as api
from streamify.v1.video_pb2 import VideoStatus
from tests.support.mesh import running_service
from tests.support.metadata import bearer, service_settings

MiB = 1024 * 1024
ALICE = bearer("alice")


class Mesh:
    def __init__(self, settings, uploads, videos):
        self.settings, self.uploads, self.videos = settings, uploads, videos
        self.queue = make_queue(settings)
        self.s3 = make_s3_client(settings)

    async def video(self, name: str, who=ALICE):
        return await self.videos.GetVideo(meta.GetVideoRequest(name=name), metadata=who)

    async def wait_for_status(self, name: str, status) -> object:
        for _ in range(200):
            video = await self.video(name)
            if video.status == status:
                return video
            await asyncio.sleep(0.05)
        raise AssertionError(f"{name} never became {VideoStatus.Name(status)}: {video}")

    @staticmethod
    def source_key(upload: api.Upload) -> str:
        """The sealed key the Transcode service reads for this upload."""
        return storage_keys.source_key(
            upload.video.removeprefix("videos/"), upload.name.removeprefix("uploads/")
        )

    @staticmethod
    def incoming_key(upload: api.Upload) -> str:
        """Where the upload's single-PUT URL writes."""
        return storage_keys.incoming_key(
            upload.video.removeprefix("videos/"), upload.name.removeprefix("uploads/")
        )

    def stored(self, key: str) -> bytes | None:
        try:
            obj = self.s3.get_object(Bucket=self.settings.uploads_bucket, Key=key)
        except self.s3.exceptions.NoSuchKey:
            return None
        body: bytes = obj["Body"].read()
        return body

    def stored_sha256(self, upload: api.Upload) -> str:
        stored = self.stored(self.source_key(upload))
        assert stored is not None, f"no sealed source for {upload.name}"
        return hashlib.sha256(stored).hexdigest()


BASE_SETTINGS = dict(
    upload_single_put_max_bytes=8 * MiB,
    upload_part_size_bytes=5 * MiB,
    upload_max_bytes=64 * MiB,
    upload_url_ttl_seconds=60,
    upload_max_pending_per_user=5,
    queue_visibility_timeout_seconds=5,
)


@contextlib.asynccontextmanager
async def started_mesh(tmp_path, seaweedfs, **overrides):
    base = service_settings(
        data_dir=tmp_path, **(BASE_SETTINGS | overrides), **seaweedfs.settings_overrides()
    )
    async with running_service(metadata_app.run, base) as metadata_target:
        settings = base.model_copy(update={"metadata_target": metadata_target})
        async with running_service(upload_app.run, settings) as upload_target:
            channels = [grpc.aio.insecure_channel(t) for t in (upload_target, metadata_target)]
            m = Mesh(
                settings,
                upload_service_pb2_grpc.UploadServiceStub(channels[0]),
                metadata_service_pb2_grpc.MetadataServiceStub(channels[1]),
            )
            try:
                yield m
            finally:
                await m.queue.close()
                for channel in channels:
                    await channel.close()
