"""Deleting a video removes it everywhere: no byte of it is left in either bucket, its job is
gone, and the playback and poster URLs its owner was given (grants included) stop working, so
a link copied before the deletion plays nothing.

Against the whole mesh as `streamify run` starts it (tests/support/whole_mesh.py): the
services follow the Metadata service's feed of video events, nothing is called by hand."""

from __future__ import annotations

import asyncio
import os
import urllib.request

import grpc
import pytest

from streamify.core import storage_keys
from streamify.core.config import Settings
from streamify.core.db import make_engine, make_sessions
from streamify.core.errors import details_of
from streamify.core.storage import make_s3_client
from streamify.upload.models import OutboxRow
from streamify.v1 import metadata_service_pb2 as meta
from streamify.v1 import (
    metadata_service_pb2_grpc,
    transcode_service_pb2,
    transcode_service_pb2_grpc,
)
from streamify.v1 import upload_service_pb2 as up
from streamify.v1.upload_service_pb2 import UploadState
from tests.support.clips import make_clip
from tests.support.local_mesh import http_status
from tests.support.metadata import bearer
from tests.support.uploads import Mesh, started_mesh

pytestmark = pytest.mark.security
TRIES = 600  # polls of 0.1 s: a cap on tries, not a time limit
ALICE = bearer("alice")


def stored_keys(s3, bucket: str, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


async def test_a_deleted_video_leaves_nothing_behind_and_its_links_stop_playing(
    whole_mesh, tmp_path
):
    mesh = whole_mesh
    token = await asyncio.to_thread(mesh.token, "deleter")
    auth = (("authorization", f"Bearer {token}"),)
    clip = make_clip(tmp_path / "clip.mp4", width=320, height=180, duration=2.0)
    result = await asyncio.to_thread(mesh.upload, token, clip, "doomed", tmp_path / "state", 600)
    assert result["video_status"] == "READY", result
    name = result["video"]
    video_id = name.removeprefix("videos/")
    settings = Settings(
        embedded=True,
        data_dir=str(mesh.data_dir),
        seaweedfs_port=int(mesh.env["STREAMIFY_SEAWEEDFS_PORT"]),
    )
    s3 = make_s3_client(settings)
    places = {
        "sources": (settings.uploads_bucket, storage_keys.source_prefix(video_id)),
        "incoming": (settings.uploads_bucket, storage_keys.incoming_prefix(video_id)),
        "media": (settings.media_bucket, storage_keys.media_prefix(video_id)),
    }

    def left_behind() -> dict[str, list[str]]:
        return {where: stored_keys(s3, *place) for where, place in places.items()}

    def statuses(urls: list[str]) -> list[int]:
        return [http_status(u) for u in urls]

    async with grpc.aio.insecure_channel(mesh.gateway) as channel:  # through the gateway
        videos = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        jobs = transcode_service_pb2_grpc.TranscodeServiceStub(channel)
        video = await videos.GetVideo(meta.GetVideoRequest(name=name), metadata=auth)
        assert "/grant." in video.playback_url  # private by default: the link carries a grant
        master = await asyncio.to_thread(
            lambda: urllib.request.urlopen(video.playback_url, timeout=15).read().decode()
        )
        variant = video.playback_url.rsplit("/", 1)[0] + "/" + master.splitlines()[-1]
        links = [video.playback_url, video.poster_url, variant]
        # they play, and now Envoy's cache holds them
        assert await asyncio.to_thread(statuses, links) == [200, 200, 200]
        before = await asyncio.to_thread(left_behind)
        assert before["sources"] and before["media"]

        await videos.DeleteVideo(meta.DeleteVideoRequest(name=name), metadata=auth)

        for _ in range(TRIES):
            left = await asyncio.to_thread(left_behind)
            now = await asyncio.to_thread(statuses, links)
            if not any(left.values()) and now == [403, 403, 403]:
                break
            await asyncio.sleep(0.1)
        assert not any(left.values()), f"left behind: {left}"
        assert now == [403, 403, 403], now
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await jobs.GetTranscodeJob(
                transcode_service_pb2.GetTranscodeJobRequest(name=f"transcodeJobs/{video_id}"),
                metadata=auth,
            )
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def put_pending_upload(mesh: Mesh) -> up.Upload:
    data = os.urandom(2000)
    upload = await mesh.uploads.CreateUpload(
        up.CreateUploadRequest(file_name="a.mp4", size_bytes=len(data), content_type="video/mp4"),
        metadata=ALICE,
    )
    headers = dict(upload.single_put.headers)
    reply = await asyncio.to_thread(
        urllib.request.urlopen,
        urllib.request.Request(upload.single_put.url, data=data, method="PUT", headers=headers),
    )
    assert reply.status == 200
    return upload


async def test_deleting_a_video_aborts_its_unfinished_upload_and_removes_its_bytes(
    tmp_path, seaweedfs
):
    async with started_mesh(tmp_path, seaweedfs, video_event_poll_seconds=0.1) as mesh:
        upload = await put_pending_upload(mesh)
        await mesh.videos.DeleteVideo(meta.DeleteVideoRequest(name=upload.video), metadata=ALICE)
        for _ in range(TRIES):
            got = await mesh.uploads.GetUpload(
                up.GetUploadRequest(name=upload.name), metadata=ALICE
            )
            if got.state == UploadState.UPLOAD_STATE_ABORTED:
                break
            await asyncio.sleep(0.1)
        assert got.state == UploadState.UPLOAD_STATE_ABORTED
        assert mesh.stored(mesh.incoming_key(upload)) is None
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await mesh.uploads.CompleteUpload(
                up.CompleteUploadRequest(name=upload.name), metadata=ALICE
            )
        assert details_of(refused.value)[0].reason == "UPLOAD_ABORTED"
        assert "deleted" in refused.value.details()


async def test_an_upload_completed_after_its_video_was_deleted_is_never_transcoded(
    tmp_path, seaweedfs
):
    # the follower looks once at start, then not for an hour: completion wins the race
    async with started_mesh(tmp_path, seaweedfs, video_event_poll_seconds=3600) as mesh:
        upload = await put_pending_upload(mesh)
        await mesh.videos.DeleteVideo(meta.DeleteVideoRequest(name=upload.video), metadata=ALICE)
        done = await mesh.uploads.CompleteUpload(
            up.CompleteUploadRequest(name=upload.name), metadata=ALICE
        )
        assert done.state == UploadState.UPLOAD_STATE_COMPLETED
        sessions = make_sessions(make_engine(mesh.settings.resolved_database_url))
        for _ in range(TRIES):  # until the relay has delivered the outbox row
            with sessions() as session:
                if all(row.done for row in session.query(OutboxRow)):
                    break
            await asyncio.sleep(0.1)
        assert await mesh.queue.receive(max_messages=10, wait_seconds=0.5) == []


async def test_a_deleted_videos_cdn_copies_are_invalidated_in_each_pass(seaweedfs, sqs_server):
    """On EKS CloudFront caches the media at its edges: each purge pass invalidates the
    video's prefix there (moto stands in for CloudFront's API)."""
    import boto3

    from streamify.transcode.orchestrator.deletions import CdnInvalidation, MediaPurger
    from streamify.v1.metadata_service_pb2 import VideoEvent, VideoEventType

    cloudfront = boto3.client(
        "cloudfront",
        endpoint_url=sqs_server.endpoint_url,  # moto's server mode answers every AWS API
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "streamify-media",
            "Comment": "test",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "media",
                        "DomainName": "media.s3.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "media",
                "ViewerProtocolPolicy": "redirect-to-https",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
            },
        }
    )["Distribution"]["Id"]
    s3 = make_s3_client(Settings(**seaweedfs.settings_overrides()))  # type: ignore[arg-type]
    video_id = "cdn" + os.urandom(4).hex()
    key = f"{storage_keys.media_prefix(video_id)}master.m3u8"
    s3.put_object(Bucket=seaweedfs.media_bucket, Key=key, Body=b"#EXTM3U\n")
    purge = MediaPurger(
        s3, seaweedfs.media_bucket, CdnInvalidation(cloudfront, distribution), "first"
    )
    event = VideoEvent(
        sequence=7, video=f"videos/{video_id}", type=VideoEventType.VIDEO_EVENT_TYPE_DELETED
    )
    await purge(event)
    await purge.again("again")(event)
    assert stored_keys(s3, seaweedfs.media_bucket, storage_keys.media_prefix(video_id)) == []
    listed = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    batches = [
        cloudfront.get_invalidation(DistributionId=distribution, Id=item["Id"])["Invalidation"][
            "InvalidationBatch"
        ]
        for item in listed.get("Items", [])
    ]
    assert {b["CallerReference"] for b in batches} == {
        f"deleted-{video_id}-7-first",
        f"deleted-{video_id}-7-again",
    }
    assert all(b["Paths"]["Items"] == [f"/videos/{video_id}/*"] for b in batches)
