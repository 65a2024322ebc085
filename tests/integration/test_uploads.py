"""Uploads end to end against real SeaweedFS: the Upload and Metadata services over gRPC,
bytes sent straight to storage through the pre-signed URLs, the hand-off on the durable queue."""

from __future__ import annotations

import asyncio
import hashlib
import os

import grpc
import pytest
import requests

from streamify.core.errors import details_of
from streamify.core.storage import make_s3_client
from streamify.v1 import metadata_service_pb2 as meta
from streamify.v1 import upload_service_pb2 as api
from streamify.v1.events_pb2 import VideoUploadedEvent
from streamify.v1.upload_service_pb2 import UploadState
from streamify.v1.video_pb2 import VideoStatus
from tests.support.metadata import bearer
from tests.support.uploads import Mesh, started_mesh

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
ALICE, BOB = bearer("alice"), bearer("bob")


@pytest.fixture
async def mesh(tmp_path, seaweedfs):
    async with started_mesh(tmp_path, seaweedfs) as m:
        yield m


def put(url: str, data: bytes, headers: dict | None = None) -> requests.Response:
    return requests.put(url, data=data, headers=headers or {}, timeout=30)


async def send_parts(mesh: Mesh, upload: api.Upload, data: bytes, numbers) -> dict[int, str]:
    signed = await mesh.uploads.SignParts(
        api.SignPartsRequest(name=upload.name, part_numbers=numbers), metadata=ALICE
    )
    etags = {}
    for part in signed.parts:
        start = (part.part_number - 1) * upload.multipart.part_size_bytes
        reply = put(part.url, data[start : start + part.size_bytes])
        assert reply.status_code == 200, reply.text
        etags[part.part_number] = reply.headers["ETag"]
    return etags


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def test_small_file_goes_up_in_one_put_and_is_handed_to_transcoding(mesh):
    data = os.urandom(300_000)
    upload = await mesh.uploads.CreateUpload(
        api.CreateUploadRequest(
            file_name="cat.mp4", size_bytes=len(data), content_type="video/mp4", title="Cat"
        ),
        metadata=ALICE,
    )
    assert upload.single_put.url and not upload.multipart.part_count
    assert "cat.mp4" not in upload.single_put.url  # the server chooses the key
    assert (await mesh.video(upload.video)).status == VideoStatus.VIDEO_STATUS_UPLOADING
    assert put(upload.single_put.url, data, dict(upload.single_put.headers)).status_code == 200
    done = await mesh.uploads.CompleteUpload(
        api.CompleteUploadRequest(name=upload.name), metadata=ALICE
    )
    assert done.state == UploadState.UPLOAD_STATE_COMPLETED
    video = await mesh.wait_for_status(upload.video, VideoStatus.VIDEO_STATUS_UPLOADED)
    assert video.title == "Cat" and video.source_size_bytes == len(data)
    assert video.source_upload == upload.name
    assert mesh.stored_sha256(upload) == hashlib.sha256(data).hexdigest()
    [job] = await mesh.queue.receive(max_messages=10, wait_seconds=2)
    event = VideoUploadedEvent.FromString(job.body)
    assert (event.video, event.size_bytes, event.key, job.key) == (
        upload.video,
        len(data),
        mesh.source_key(upload),
        upload.video.removeprefix("videos/"),
    )


async def test_multipart_upload_resumes_sending_only_missing_parts(mesh):
    data = os.urandom(12 * MiB + 12345)
    upload = await mesh.uploads.CreateUpload(
        api.CreateUploadRequest(
            file_name="big.mov", size_bytes=len(data), content_type="video/quicktime"
        ),
        metadata=ALICE,
    )
    assert (upload.multipart.part_size_bytes, upload.multipart.part_count) == (5 * MiB, 3)
    await send_parts(mesh, upload, data, [1, 3])  # ...and the client is killed

    error = await rpc_error(
        mesh.uploads.CompleteUpload(api.CompleteUploadRequest(name=upload.name), metadata=ALICE)
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "part 2" in error.details()
    info, _ = details_of(error)
    assert info.reason == "PARTS_MISSING" and info.metadata["missing_parts"] == "2"

    listed = await mesh.uploads.ListParts(api.ListPartsRequest(name=upload.name), metadata=ALICE)
    held = {p.part_number for p in listed.parts}
    assert held == {1, 3}
    missing = [n for n in range(1, upload.multipart.part_count + 1) if n not in held]
    await send_parts(mesh, upload, data, missing)
    done = await mesh.uploads.CompleteUpload(
        api.CompleteUploadRequest(name=upload.name), metadata=ALICE
    )
    assert done.state == UploadState.UPLOAD_STATE_COMPLETED
    assert mesh.stored_sha256(upload) == hashlib.sha256(data).hexdigest()
    await mesh.wait_for_status(upload.video, VideoStatus.VIDEO_STATUS_UPLOADED)


async def test_completing_twice_succeeds_and_queues_one_job(mesh):
    data = os.urandom(1000)
    upload = await mesh.uploads.CreateUpload(
        api.CreateUploadRequest(file_name="a.mp4", size_bytes=len(data), content_type="video/mp4"),
        metadata=ALICE,
    )
    put(upload.single_put.url, data, dict(upload.single_put.headers))
    first, second = await asyncio.gather(
        *(
            mesh.uploads.CompleteUpload(api.CompleteUploadRequest(name=upload.name), metadata=ALICE)
            for _ in range(2)
        )
    )
    again = await mesh.uploads.CompleteUpload(
        api.CompleteUploadRequest(name=upload.name), metadata=ALICE
    )
    assert first.state == second.state == again.state == UploadState.UPLOAD_STATE_COMPLETED
    await mesh.wait_for_status(upload.video, VideoStatus.VIDEO_STATUS_UPLOADED)
    jobs = await mesh.queue.receive(max_messages=10, wait_seconds=2)
    assert [j.key for j in jobs] == [upload.video.removeprefix("videos/")]


async def test_storage_rejects_tampered_and_wrong_size_puts(mesh):
    data = os.urandom(2000)
    upload = await mesh.uploads.CreateUpload(
        api.CreateUploadRequest(file_name="a.mp4", size_bytes=len(data), content_type="video/mp4"),
        metadata=ALICE,
    )
    url = upload.single_put.url
    tampered = url.replace("incoming/", "sources/", 1)  # the sealed key: never signed
    assert put(tampered, data, dict(upload.single_put.headers)).status_code == 403
    wrong_type = put(url, data, {"Content-Type": "text/plain"})
    assert wrong_type.status_code == 403
    short = put(url, data[:1000], dict(upload.single_put.headers))
    if short.status_code == 200:  # storage accepted it: completion must refuse it
        error = await rpc_error(
            mesh.uploads.CompleteUpload(api.CompleteUploadRequest(name=upload.name), metadata=ALICE)
        )
        assert (
            error.code() == grpc.StatusCode.FAILED_PRECONDITION
            and details_of(error)[0].reason == "SIZE_MISMATCH"
        )
    else:
        assert short.status_code in (400, 403)


async def test_expired_part_url_is_rejected_by_storage(mesh, tmp_path):
    settings = mesh.settings
    from streamify.upload.storage import UploadStorage

    storage = UploadStorage(
        make_s3_client(settings),
        make_s3_client(settings, public=True),
        settings.uploads_bucket,
        url_ttl_seconds=1,
    )
    upload_id = storage.start_multipart("sources/expiry/test", "video/mp4")
    url = storage.sign_part("sources/expiry/test", upload_id, 1, 5 * MiB)
    await asyncio.sleep(2.5)
    assert put(url, os.urandom(5 * MiB)).status_code == 403
    storage.abort_multipart("sources/expiry/test", upload_id)


@pytest.mark.parametrize(
    ("field", "request_fields", "reason_or_field"),
    [
        ("size_bytes", dict(size_bytes=0), "size_bytes"),
        ("size_bytes", dict(size_bytes=65 * MiB), "FILE_TOO_LARGE"),
        ("content_type", dict(content_type="application/pdf"), "content_type"),
    ],
)
async def test_bad_declarations_are_refused_before_anything_is_created(
    mesh, field, request_fields, reason_or_field
):
    request = dict(file_name="x.mp4", size_bytes=1000, content_type="video/mp4") | request_fields
    error = await rpc_error(
        mesh.uploads.CreateUpload(api.CreateUploadRequest(**request), metadata=ALICE)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and field in error.details()
    info, bad = details_of(error)
    assert reason_or_field in (
        [v.field for v in bad.field_violations] + [info.reason if info else ""]
    )
    assert not (await mesh.videos.ListVideos(meta.ListVideosRequest(), metadata=ALICE)).videos


async def test_another_users_upload_is_not_found(mesh):
    upload = await mesh.uploads.CreateUpload(
        api.CreateUploadRequest(file_name="a.mp4", size_bytes=20 * MiB, content_type="video/mp4"),
        metadata=ALICE,
    )
    for call in (
        mesh.uploads.GetUpload(api.GetUploadRequest(name=upload.name), metadata=BOB),
        mesh.uploads.SignParts(
            api.SignPartsRequest(name=upload.name, part_numbers=[1]), metadata=BOB
        ),
        mesh.uploads.ListParts(api.ListPartsRequest(name=upload.name), metadata=BOB),
        mesh.uploads.CompleteUpload(api.CompleteUploadRequest(name=upload.name), metadata=BOB),
        mesh.uploads.AbortUpload(api.AbortUploadRequest(name=upload.name), metadata=BOB),
    ):
        assert (await rpc_error(call)).code() == grpc.StatusCode.NOT_FOUND


async def test_aborted_upload_fails_its_video_and_refuses_more_parts(mesh):
    upload = await mesh.uploads.CreateUpload(
        api.CreateUploadRequest(file_name="a.mp4", size_bytes=20 * MiB, content_type="video/mp4"),
        metadata=ALICE,
    )
    aborted = await mesh.uploads.AbortUpload(
        api.AbortUploadRequest(name=upload.name), metadata=ALICE
    )
    assert aborted.state == UploadState.UPLOAD_STATE_ABORTED
    video = await mesh.wait_for_status(upload.video, VideoStatus.VIDEO_STATUS_FAILED)
    assert "abandoned" in video.failure_reason
    error = await rpc_error(
        mesh.uploads.SignParts(
            api.SignPartsRequest(name=upload.name, part_numbers=[1]), metadata=ALICE
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_part_numbers_beyond_the_plan_are_refused(mesh):
    upload = await mesh.uploads.CreateUpload(
        api.CreateUploadRequest(file_name="a.mp4", size_bytes=11 * MiB, content_type="video/mp4"),
        metadata=ALICE,
    )
    error = await rpc_error(
        mesh.uploads.SignParts(
            api.SignPartsRequest(name=upload.name, part_numbers=[3, 4]), metadata=ALICE
        )
    )
    assert (
        error.code() == grpc.StatusCode.INVALID_ARGUMENT
        and "part 4 does not exist" in error.details()
    )


async def test_pending_upload_quota_is_enforced(mesh):
    for i in range(5):
        await mesh.uploads.CreateUpload(
            api.CreateUploadRequest(file_name=f"{i}.mp4", size_bytes=100, content_type="video/mp4"),
            metadata=ALICE,
        )
    error = await rpc_error(
        mesh.uploads.CreateUpload(
            api.CreateUploadRequest(file_name="6.mp4", size_bytes=100, content_type="video/mp4"),
            metadata=ALICE,
        )
    )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    ok = await mesh.uploads.CreateUpload(
        api.CreateUploadRequest(file_name="b.mp4", size_bytes=100, content_type="video/mp4"),
        metadata=BOB,
    )
    assert ok.owner == "users/bob"


async def test_create_upload_with_a_request_id_is_applied_once(mesh):
    request = api.CreateUploadRequest(
        file_name="a.mp4", size_bytes=100, content_type="video/mp4", request_id="r-1"
    )
    first = await mesh.uploads.CreateUpload(request, metadata=ALICE)
    second = await mesh.uploads.CreateUpload(request, metadata=ALICE)
    assert (first.name, first.video) == (second.name, second.video)


async def test_uploads_never_completed_are_aborted_and_their_videos_fail(tmp_path, seaweedfs):
    async with started_mesh(
        tmp_path, seaweedfs, upload_expiry_seconds=0.5, upload_sweep_interval_seconds=0.2
    ) as m:
        upload = await m.uploads.CreateUpload(
            api.CreateUploadRequest(
                file_name="a.mp4", size_bytes=20 * MiB, content_type="video/mp4"
            ),
            metadata=ALICE,
        )
        video = await m.wait_for_status(upload.video, VideoStatus.VIDEO_STATUS_FAILED)
        assert "expired" in video.failure_reason
        got = await m.uploads.GetUpload(api.GetUploadRequest(name=upload.name), metadata=ALICE)
        assert got.state == UploadState.UPLOAD_STATE_ABORTED


async def test_a_completed_upload_reaches_the_queue_even_if_publishing_failed_before_a_restart(
    tmp_path, seaweedfs
):
    data = os.urandom(5000)
    # First life: the queue is unreachable, so the relay cannot publish after CompleteUpload.
    async with started_mesh(
        tmp_path, seaweedfs, queue_backend="redis", queue_url="redis://127.0.0.1:9/0"
    ) as m:
        upload = await m.uploads.CreateUpload(
            api.CreateUploadRequest(
                file_name="a.mp4", size_bytes=len(data), content_type="video/mp4"
            ),
            metadata=ALICE,
        )
        put(upload.single_put.url, data, dict(upload.single_put.headers))
        done = await m.uploads.CompleteUpload(
            api.CompleteUploadRequest(name=upload.name), metadata=ALICE
        )
        assert done.state == UploadState.UPLOAD_STATE_COMPLETED  # acknowledged
    # Second life (same database): the relay finds the outbox row and finishes the hand-off.
    async with started_mesh(tmp_path, seaweedfs) as m:
        await m.wait_for_status(upload.video, VideoStatus.VIDEO_STATUS_UPLOADED)
        jobs = await m.queue.receive(max_messages=10, wait_seconds=5)
        assert [j.key for j in jobs] == [upload.video.removeprefix("videos/")]
