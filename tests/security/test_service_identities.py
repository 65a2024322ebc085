"""A stolen service credential opens only what that service does, against a real Metadata
server: each identity's token is refused outside its allow-list (streamify.core.access), a
service reports only the statuses it owns, and no key but its own signs as an identity."""

from __future__ import annotations

import time

import grpc
import jwt
import pytest

from streamify.core import token_keys
from streamify.core.auth import mint_token
from streamify.core.errors import details_of
from streamify.v1 import metadata_service_pb2 as api
from streamify.v1.video_pb2 import Video, VideoStatus
from tests.support.keys import TEST_KEYS, bearer
from tests.support.metadata import running_metadata, service_settings

pytestmark = pytest.mark.security

ALICE = bearer("alice")
UPLOAD, TRANSCODE = bearer("upload", "service"), bearer("transcode", "service")
GATEWAY, WORKER = bearer("gateway", "service"), bearer("worker", "service")


@pytest.fixture
async def metadata(tmp_path):
    async with running_metadata(service_settings(data_dir=tmp_path)) as running:
        yield running.stub


async def refused(call, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return caught.value


async def private_video(stub) -> Video:
    return await stub.CreateVideo(
        api.CreateVideoRequest(video=Video(title="alice's private film")), metadata=ALICE
    )


async def test_the_gateway_token_reads_one_video_and_nothing_else(metadata):
    video = await private_video(metadata)
    got = await metadata.GetVideo(api.GetVideoRequest(name=video.name), metadata=GATEWAY)
    assert got.name == video.name  # what the /media check needs
    attempts = [
        metadata.ListVideos(api.ListVideosRequest(), metadata=GATEWAY),  # enumerate everyone's
        metadata.UpdateVideo(
            api.UpdateVideoRequest(
                video=Video(name=video.name, title="defaced"), update_mask={"paths": ["title"]}
            ),
            metadata=GATEWAY,
        ),
        metadata.DeleteVideo(api.DeleteVideoRequest(name=video.name), metadata=GATEWAY),
        metadata.UpdateVideoStatus(
            api.UpdateVideoStatusRequest(name=video.name, status=VideoStatus.VIDEO_STATUS_READY),
            metadata=GATEWAY,
        ),
        metadata.CreateVideo(
            api.CreateVideoRequest(video=Video(title="spam"), owner="users/alice"),
            metadata=GATEWAY,
        ),
    ]
    for attempt in attempts:
        error = await refused(attempt, grpc.StatusCode.PERMISSION_DENIED)
        assert details_of(error)[0].reason == "METHOD_NOT_ALLOWED"
        assert "the 'gateway' service identity may not call" in error.details()
    again = await metadata.GetVideo(api.GetVideoRequest(name=video.name), metadata=ALICE)
    assert again.title == video.title and again.status == VideoStatus.VIDEO_STATUS_UPLOADING


async def test_the_worker_token_cannot_touch_metadata(metadata):
    video = await private_video(metadata)
    for call in (
        metadata.GetVideo(api.GetVideoRequest(name=video.name), metadata=WORKER),
        metadata.ListVideos(api.ListVideosRequest(), metadata=WORKER),
    ):
        await refused(call, grpc.StatusCode.PERMISSION_DENIED)


async def test_a_service_reports_only_the_statuses_it_owns(metadata):
    video = await private_video(metadata)

    def to(status, who, **fields):
        return metadata.UpdateVideoStatus(
            api.UpdateVideoStatusRequest(name=video.name, status=status, **fields), metadata=who
        )

    S = VideoStatus
    error = await refused(to(S.VIDEO_STATUS_READY, UPLOAD), grpc.StatusCode.PERMISSION_DENIED)
    assert details_of(error)[0].reason == "STATUS_NOT_ALLOWED"
    assert "the 'upload' service does not move a video from UPLOADING to READY" in error.details()
    await refused(to(S.VIDEO_STATUS_UPLOADED, TRANSCODE), grpc.StatusCode.PERMISSION_DENIED)
    # and each does what it is for
    await to(S.VIDEO_STATUS_UPLOADED, UPLOAD)
    await to(S.VIDEO_STATUS_PROCESSING, TRANSCODE)
    # Upload fails only an upload; a video being processed is Transcode's to fail
    error = await refused(
        to(S.VIDEO_STATUS_FAILED, UPLOAD, failure_reason="x"), grpc.StatusCode.PERMISSION_DENIED
    )
    assert "from PROCESSING to FAILED" in error.details()
    done = await to(S.VIDEO_STATUS_FAILED, TRANSCODE, failure_reason="decoder gave up")
    assert done.status == S.VIDEO_STATUS_FAILED


def _claims(subject: str, kind: str) -> dict:
    now = int(time.time())
    return {"sub": subject, "kind": kind, "iss": "streamify", "iat": now, "exp": now + 600}


@pytest.mark.parametrize(
    ("signer", "kid", "subject", "kind"),
    [
        ("gateway", "gateway", "operator", "service"),  # its key, claiming to be the operator
        ("gateway", "operator", "operator", "service"),  # its key, naming the operator's kid
        ("gateway", "users", "alice", "user"),  # its key, posing as the user issuer
        ("worker", "worker", "bob", "user"),  # a worker minting a user token
    ],
)
async def test_a_stolen_service_key_signs_only_as_its_service(metadata, signer, kid, subject, kind):
    token = jwt.encode(
        _claims(subject, kind), TEST_KEYS[signer].private, algorithm="EdDSA", headers={"kid": kid}
    )
    call = metadata.ListVideos(
        api.ListVideosRequest(), metadata=(("authorization", f"Bearer {token}"),)
    )
    error = await refused(call, grpc.StatusCode.UNAUTHENTICATED)
    assert details_of(error)[0].reason == "TOKEN_INVALID"


async def test_what_a_server_holds_mints_nothing(metadata):
    """Metadata's pod has the public keys only: used as an HMAC secret (algorithm confusion),
    or with a key the server does not know, they forge nothing."""
    public = token_keys.public_key_text(TEST_KEYS["operator"].public).encode()
    forged = jwt.encode(
        _claims("operator", "service"), public, algorithm="HS256", headers={"kid": "operator"}
    )
    stranger = mint_token(token_keys.generate(("operator",))["operator"], kind="service")
    for token in (forged, stranger):
        call = metadata.ListVideos(
            api.ListVideosRequest(), metadata=(("authorization", f"Bearer {token}"),)
        )
        await refused(call, grpc.StatusCode.UNAUTHENTICATED)
