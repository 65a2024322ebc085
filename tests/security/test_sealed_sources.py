"""What gets transcoded is exactly the file that was completed and verified.

A pre-signed PUT URL stays valid until it expires, so its holder can send it again after
CompleteUpload; a declared SHA-256 must hold for the bytes transcoded; and the Transcode service
must read the upload's own sealed object, not whatever else lies under the video's prefix.
Against the real Upload and Metadata services on a real SeaweedFS."""

from __future__ import annotations

import asyncio
import hashlib
import os

import grpc
import pytest
import requests

from streamify.core.errors import details_of
from streamify.v1 import upload_service_pb2 as api
from streamify.v1.events_pb2 import VideoUploadedEvent
from streamify.v1.upload_service_pb2 import UploadState
from streamify.v1.video_pb2 import VideoStatus
from tests.support.metadata import bearer
from tests.support.uploads import Mesh, started_mesh

pytestmark = pytest.mark.security
MiB = 1024 * 1024
ALICE = bearer("alice")


@pytest.fixture
async def mesh(tmp_path, seaweedfs):
    async with started_mesh(tmp_path, seaweedfs, upload_sweep_interval_seconds=0.2) as m:
        yield m


def put(url: str, data: bytes, headers) -> requests.Response:
    return requests.put(url, data=data, headers=dict(headers), timeout=30)


async def create(mesh: Mesh, data: bytes, **fields) -> api.Upload:
    return await mesh.uploads.CreateUpload(
        api.CreateUploadRequest(
            file_name="a.mp4", size_bytes=len(data), content_type="video/mp4", **fields
        ),
        metadata=ALICE,
    )


async def complete(mesh: Mesh, upload: api.Upload) -> api.Upload:
    return await mesh.uploads.CompleteUpload(
        api.CompleteUploadRequest(name=upload.name), metadata=ALICE
    )


async def send_every_part(mesh: Mesh, upload: api.Upload, data: bytes) -> None:
    count = upload.multipart.part_count
    signed = await mesh.uploads.SignParts(
        api.SignPartsRequest(name=upload.name, part_numbers=range(1, count + 1)), metadata=ALICE
    )
    for part in signed.parts:
        start = (part.part_number - 1) * upload.multipart.part_size_bytes
        assert requests.put(part.url, data=data[start : start + part.size_bytes], timeout=30).ok


async def refusal(call) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), details_of(info.value)[0].reason, info.value.details() or ""


async def eventually_gone(mesh: Mesh, key: str) -> None:
    for _ in range(200):
        if mesh.stored(key) is None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} was never swept")


async def test_replaying_the_put_url_after_completion_changes_nothing_that_is_transcoded(mesh):
    good, evil = os.urandom(4000), os.urandom(4000)  # same size: the size check cannot tell
    upload = await create(mesh, good)
    assert put(upload.single_put.url, good, upload.single_put.headers).status_code == 200
    await complete(mesh, upload)
    # the URL still works (S3 cannot revoke it) ...
    assert put(upload.single_put.url, evil, upload.single_put.headers).status_code == 200
    again = await complete(mesh, upload)
    assert again.state == UploadState.UPLOAD_STATE_COMPLETED
    # ... but what it wrote is not what is transcoded, and the sweeper deletes it
    assert mesh.stored(mesh.source_key(upload)) == good
    [job] = await mesh.queue.receive(max_messages=10, wait_seconds=2)
    assert VideoUploadedEvent.FromString(job.body).key == mesh.source_key(upload)
    await eventually_gone(mesh, mesh.incoming_key(upload))
    assert mesh.stored(mesh.source_key(upload)) == good


async def test_a_put_url_is_never_signed_for_the_key_that_is_transcoded(mesh):
    data = os.urandom(1000)
    upload = await create(mesh, data)
    assert mesh.source_key(upload) not in upload.single_put.url
    aimed = upload.single_put.url.replace(mesh.incoming_key(upload), mesh.source_key(upload))
    assert put(aimed, data, upload.single_put.headers).status_code == 403
    assert mesh.stored(mesh.source_key(upload)) is None


async def test_storage_refuses_bytes_that_do_not_match_the_declared_sha256(mesh):
    data = os.urandom(5000)
    upload = await create(mesh, data, sha256=hashlib.sha256(data).hexdigest())
    assert "x-amz-checksum-sha256" in upload.single_put.headers
    other = bytes(reversed(data))
    assert put(upload.single_put.url, other, upload.single_put.headers).status_code == 400
    code, reason, _ = await refusal(complete(mesh, upload))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "OBJECT_MISSING")
    # nothing is lost: the right file still goes up through the same upload
    assert put(upload.single_put.url, data, upload.single_put.headers).status_code == 200
    assert (await complete(mesh, upload)).state == UploadState.UPLOAD_STATE_COMPLETED
    assert mesh.stored_sha256(upload) == upload.sha256


async def test_the_declared_sha256_is_checked_even_where_storage_does_not_check_it(mesh):
    # a storage that ignores the signed checksum header is simulated by writing the incoming
    # object directly: the Upload service's own check must still refuse it
    data = os.urandom(5000)
    upload = await create(mesh, data, sha256=hashlib.sha256(data).hexdigest())
    other = bytes(reversed(data))
    mesh.s3.put_object(
        Bucket=mesh.settings.uploads_bucket, Key=mesh.incoming_key(upload), Body=other
    )
    code, reason, message = await refusal(complete(mesh, upload))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CHECKSUM_MISMATCH")
    assert hashlib.sha256(other).hexdigest() in message and "PUT the whole file again" in message
    assert mesh.stored(mesh.source_key(upload)) is None  # nothing sealed for transcoding
    assert put(upload.single_put.url, data, upload.single_put.headers).status_code == 200
    assert (await complete(mesh, upload)).state == UploadState.UPLOAD_STATE_COMPLETED
    assert mesh.stored(mesh.source_key(upload)) == data


async def test_a_multipart_file_that_does_not_match_its_sha256_is_refused_and_discarded(mesh):
    data = os.urandom(6 * MiB)  # two parts of 5 MiB and 1 MiB
    declared = hashlib.sha256(b"another file").hexdigest()
    upload = await create(mesh, data, multipart=True, sha256=declared)
    await send_every_part(mesh, upload, data)
    code, reason, message = await refusal(complete(mesh, upload))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CHECKSUM_MISMATCH")
    assert declared in message and "start a new upload" in message
    got = await mesh.uploads.GetUpload(api.GetUploadRequest(name=upload.name), metadata=ALICE)
    assert got.state == UploadState.UPLOAD_STATE_ABORTED
    video = await mesh.wait_for_status(upload.video, VideoStatus.VIDEO_STATUS_FAILED)
    assert "SHA-256" in video.failure_reason
    assert mesh.stored(mesh.source_key(upload)) is None
    assert await mesh.queue.receive(max_messages=10, wait_seconds=0.5) == []


async def test_a_multipart_file_matching_its_sha256_completes(mesh):
    data = os.urandom(6 * MiB)
    upload = await create(mesh, data, multipart=True, sha256=hashlib.sha256(data).hexdigest())
    await send_every_part(mesh, upload, data)
    assert (await complete(mesh, upload)).state == UploadState.UPLOAD_STATE_COMPLETED
    assert mesh.stored_sha256(upload) == upload.sha256


async def test_an_aborted_uploads_late_put_is_swept(mesh):
    data = os.urandom(1000)
    upload = await create(mesh, data)
    await mesh.uploads.AbortUpload(api.AbortUploadRequest(name=upload.name), metadata=ALICE)
    assert put(upload.single_put.url, data, upload.single_put.headers).status_code == 200
    await eventually_gone(mesh, mesh.incoming_key(upload))


async def test_a_pending_uploads_incoming_bytes_are_not_swept(mesh):
    data = os.urandom(1000)
    upload = await create(mesh, data)
    assert put(upload.single_put.url, data, upload.single_put.headers).status_code == 200
    await asyncio.sleep(1.0)  # five sweeps
    assert mesh.stored(mesh.incoming_key(upload)) == data
    assert (await complete(mesh, upload)).state == UploadState.UPLOAD_STATE_COMPLETED
