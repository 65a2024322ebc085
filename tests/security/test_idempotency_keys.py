"""Idempotency keys are the caller's own: another user's request_id (guessed, copied from a log
or a shared script) answers with nothing of theirs, and no length of key is an INTERNAL.

Against the real Upload and Metadata services on a real SeaweedFS (AIP-155)."""

from __future__ import annotations

import grpc
import pytest

from streamify.core.errors import details_of
from streamify.v1 import metadata_service_pb2 as meta
from streamify.v1 import upload_service_pb2 as api
from tests.support.metadata import bearer
from tests.support.uploads import started_mesh

pytestmark = pytest.mark.security
ALICE, MALLORY = bearer("alice"), bearer("mallory")


def _create(request_id: str, **fields) -> api.CreateUploadRequest:
    values = dict(
        file_name="holiday.mp4", size_bytes=1000, content_type="video/mp4", request_id=request_id
    )
    return api.CreateUploadRequest(**(values | fields))


@pytest.fixture
async def mesh(tmp_path, seaweedfs):
    async with started_mesh(tmp_path, seaweedfs) as m:
        yield m


async def test_another_users_request_id_gets_a_new_upload_and_a_new_video(mesh):
    alice = await mesh.uploads.CreateUpload(_create("same-key-1"), metadata=ALICE)
    mallory = await mesh.uploads.CreateUpload(_create("same-key-1"), metadata=MALLORY)
    assert mallory.name != alice.name and mallory.video != alice.video
    # nothing of Alice's is reachable through Mallory's answer
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await mesh.videos.GetVideo(meta.GetVideoRequest(name=alice.video), metadata=MALLORY)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    # Mallory aborting "her" upload leaves Alice's video alone
    await mesh.uploads.AbortUpload(api.AbortUploadRequest(name=mallory.name), metadata=MALLORY)
    video = await mesh.videos.GetVideo(meta.GetVideoRequest(name=alice.video), metadata=ALICE)
    assert video.owner == "users/alice" and video.failure_reason == ""
    # and Alice's own retry still gets her first answer
    again = await mesh.uploads.CreateUpload(_create("same-key-1"), metadata=ALICE)
    assert (again.name, again.video) == (alice.name, alice.video)


async def test_a_request_id_reused_for_another_file_is_refused_with_the_reason(mesh):
    await mesh.uploads.CreateUpload(_create("reused-key"), metadata=ALICE)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await mesh.uploads.CreateUpload(_create("reused-key", size_bytes=2000), metadata=ALICE)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in refused.value.details() and "new request_id" in refused.value.details()
    assert details_of(refused.value)[0].reason == "REQUEST_ID_REUSED"


@pytest.mark.parametrize("length", [1, 57, 58, 63, 64])
async def test_every_allowed_request_id_length_works(mesh, length):
    request_id = "k" * length
    first = await mesh.uploads.CreateUpload(_create(request_id), metadata=ALICE)
    again = await mesh.uploads.CreateUpload(_create(request_id), metadata=ALICE)
    assert again.name == first.name


async def test_a_request_id_past_the_limit_is_invalid_not_internal(mesh):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await mesh.uploads.CreateUpload(_create("k" * 65), metadata=ALICE)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in refused.value.details()


async def test_request_ids_expire_and_are_swept(tmp_path):
    """The idempotency table does not grow for ever: keys older than their lifetime go, and a
    request id that old creates anew; a young one still answers with the first result."""
    import asyncio

    from streamify.core.db import make_engine, make_sessions
    from streamify.metadata import schema
    from streamify.metadata.app import sweep_old_rows
    from streamify.metadata.models import IdempotencyKeyRow
    from streamify.metadata.store import VideoStore

    engine = make_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    schema.upgrade(engine)
    store = VideoStore(make_sessions(engine))
    store.mutate("user:alice", "CreateVideo", "old-key", lambda session: b"first")
    with make_sessions(engine)() as session:  # written two days ago
        session.query(IdempotencyKeyRow).update({"create_time_us": 1})
        session.commit()
    store.mutate("user:alice", "CreateVideo", "young-key", lambda session: b"young")
    sweeper = asyncio.create_task(
        sweep_old_rows(store, key_ttl=24 * 3600, event_retention=7 * 24 * 3600)
    )
    await asyncio.sleep(0.5)
    sweeper.cancel()
    assert (
        store.mutate("user:alice", "CreateVideo", "young-key", lambda session: b"again") == b"young"
    )
    assert store.mutate("user:alice", "CreateVideo", "old-key", lambda session: b"anew") == b"anew"
