"""The Metadata service over real gRPC channels, on SQLite with the in-process cache and on a
real PostgreSQL with a real Redis."""

from __future__ import annotations

import asyncio
import re

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from streamify.core.errors import details_of
from streamify.v1 import metadata_service_pb2 as api
from streamify.v1.video_pb2 import Progress, Rendition, Video, VideoStatus, Visibility
from tests.support.metadata import bearer, running_metadata, service_settings

pytestmark = pytest.mark.integration

ALICE, BOB = bearer("alice"), bearer("bob")
UPLOADER, TRANSCODER = bearer("upload", kind="service"), bearer("transcode", kind="service")
S = VideoStatus


@pytest.fixture(params=["sqlite+in-process-cache", "postgres+redis"])
async def metadata(request, tmp_path, postgres_server, redis_server):
    if request.param.startswith("sqlite"):
        settings = service_settings(data_dir=tmp_path, cdn_base_url="https://cdn.example/media")
    else:
        settings = service_settings(
            data_dir=tmp_path,
            cdn_base_url="https://cdn.example/media",
            database_url=postgres_server.new_database(),
            redis_url=redis_server.url,
        )
    async with running_metadata(settings) as running:
        yield running.stub


async def create(stub, title="Cats", who=ALICE, **fields) -> Video:
    return await stub.CreateVideo(
        api.CreateVideoRequest(video=Video(title=title, **fields)), metadata=who
    )


async def move(stub, video: Video, status, who=None, **fields) -> Video:
    """As the service that reports `status` does (Upload: UPLOADED, Transcode: the rest)."""
    if who is None:
        who = UPLOADER if status == S.VIDEO_STATUS_UPLOADED else TRANSCODER
    return await stub.UpdateVideoStatus(
        api.UpdateVideoStatusRequest(name=video.name, status=status, **fields), metadata=who
    )


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def test_created_video_is_uploading_owned_by_caller_and_readable(metadata):
    video = await create(metadata, "Cats", description="purring")
    assert video.name.startswith("videos/") and video.owner == "users/alice"
    assert (
        video.status == S.VIDEO_STATUS_UPLOADING
        and video.visibility == Visibility.VISIBILITY_PRIVATE
    )
    assert video.etag and video.create_time.seconds > 0
    got = await metadata.GetVideo(api.GetVideoRequest(name=video.name), metadata=ALICE)
    assert got == video


async def test_private_videos_are_invisible_to_others_public_and_unlisted_are_readable(metadata):
    private = await create(metadata, "mine")
    unlisted = await create(metadata, "link only", visibility=Visibility.VISIBILITY_UNLISTED)
    error = await rpc_error(metadata.GetVideo(api.GetVideoRequest(name=private.name), metadata=BOB))
    assert error.code() == grpc.StatusCode.NOT_FOUND and private.name in error.details()
    got = await metadata.GetVideo(api.GetVideoRequest(name=unlisted.name), metadata=BOB)
    assert got.title == "link only"


async def test_calls_without_a_token_are_unauthenticated(metadata):
    error = await rpc_error(metadata.GetVideo(api.GetVideoRequest(name="videos/abc")))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_bad_request_names_the_field(metadata):
    error = await rpc_error(metadata.GetVideo(api.GetVideoRequest(name="cats"), metadata=ALICE))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, bad_request = details_of(error)
    assert [v.field for v in bad_request.field_violations] == ["name"]
    error = await rpc_error(
        metadata.CreateVideo(api.CreateVideoRequest(video=Video()), metadata=ALICE)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "title" in error.details()


async def test_list_pages_newest_first_without_gaps_under_concurrent_inserts(metadata):
    made = [await create(metadata, f"v{i}") for i in range(5)]
    await create(metadata, "bob's", who=BOB)
    page1 = await metadata.ListVideos(api.ListVideosRequest(page_size=2), metadata=ALICE)
    assert [v.title for v in page1.videos] == ["v4", "v3"] and page1.next_page_token
    await create(metadata, "newer")  # lands before page 1: must not shift later pages
    seen = [v.title for v in page1.videos]
    token = page1.next_page_token
    while token:
        page = await metadata.ListVideos(
            api.ListVideosRequest(page_size=2, page_token=token), metadata=ALICE
        )
        seen += [v.title for v in page.videos]
        token = page.next_page_token
    assert seen == [v.title for v in reversed(made)]


async def test_page_tokens_cannot_be_forged_or_moved_to_another_query(metadata):
    for i in range(3):
        await create(metadata, f"v{i}")
    page = await metadata.ListVideos(api.ListVideosRequest(page_size=1), metadata=ALICE)
    forged = page.next_page_token[:-3] + (
        "AAA" if not page.next_page_token.endswith("AAA") else "BBB"
    )
    error = await rpc_error(
        metadata.ListVideos(api.ListVideosRequest(page_token=forged), metadata=ALICE)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = await rpc_error(
        metadata.ListVideos(
            api.ListVideosRequest(owner="users/bob", page_token=page.next_page_token),
            metadata=ALICE,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_listing_another_user_shows_only_their_public_videos(metadata):
    await create(metadata, "secret", who=BOB)
    await create(metadata, "hidden link", who=BOB, visibility=Visibility.VISIBILITY_UNLISTED)
    await create(metadata, "for all", who=BOB, visibility=Visibility.VISIBILITY_PUBLIC)
    page = await metadata.ListVideos(api.ListVideosRequest(owner="users/bob"), metadata=ALICE)
    assert [v.title for v in page.videos] == ["for all"]
    own = await metadata.ListVideos(api.ListVideosRequest(), metadata=BOB)
    assert len(own.videos) == 3


async def test_list_filters_by_status(metadata):
    a = await create(metadata, "a")
    await create(metadata, "b")
    await move(metadata, a, S.VIDEO_STATUS_UPLOADED)
    page = await metadata.ListVideos(
        api.ListVideosRequest(status=S.VIDEO_STATUS_UPLOADED), metadata=ALICE
    )
    assert [v.title for v in page.videos] == ["a"]


async def test_update_changes_only_masked_fields_and_rejects_stale_etags(metadata):
    video = await create(metadata, "old", description="keep me")
    updated = await metadata.UpdateVideo(
        api.UpdateVideoRequest(
            video=Video(name=video.name, title="new", description="ignored", etag=video.etag),
            update_mask=FieldMask(paths=["title"]),
        ),
        metadata=ALICE,
    )
    assert (updated.title, updated.description) == ("new", "keep me") and updated.etag != video.etag
    got = await metadata.GetVideo(api.GetVideoRequest(name=video.name), metadata=ALICE)
    assert got.title == "new"  # the cache was invalidated by the write
    error = await rpc_error(
        metadata.UpdateVideo(
            api.UpdateVideoRequest(
                video=Video(name=video.name, title="lost update", etag=video.etag),
                update_mask=FieldMask(paths=["title"]),
            ),
            metadata=ALICE,
        )
    )
    assert error.code() == grpc.StatusCode.ABORTED
    assert details_of(error)[0].reason == "ETAG_MISMATCH"


async def test_update_refuses_output_only_fields_and_other_users(metadata):
    video = await create(metadata, "mine")
    error = await rpc_error(
        metadata.UpdateVideo(
            api.UpdateVideoRequest(
                video=Video(name=video.name, status=S.VIDEO_STATUS_READY),
                update_mask=FieldMask(paths=["status"]),
            ),
            metadata=ALICE,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "status" in error.details() + str(
        details_of(error)[1]
    )
    error = await rpc_error(
        metadata.UpdateVideo(
            api.UpdateVideoRequest(
                video=Video(name=video.name, title="hijack"), update_mask=FieldMask(paths=["title"])
            ),
            metadata=BOB,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    public = await create(metadata, "public", visibility=Visibility.VISIBILITY_PUBLIC)
    error = await rpc_error(
        metadata.UpdateVideo(
            api.UpdateVideoRequest(
                video=Video(name=public.name, title="hijack"),
                update_mask=FieldMask(paths=["title"]),
            ),
            metadata=BOB,
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_deleted_video_is_gone(metadata):
    video = await create(metadata, "bye")
    await metadata.GetVideo(api.GetVideoRequest(name=video.name), metadata=ALICE)  # warm the cache
    await metadata.DeleteVideo(api.DeleteVideoRequest(name=video.name), metadata=ALICE)
    error = await rpc_error(metadata.GetVideo(api.GetVideoRequest(name=video.name), metadata=ALICE))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_deletions_are_listed_once_each_in_order_for_the_services_that_clean_up(metadata):
    videos = [await create(metadata, f"v{i}") for i in range(6)]
    await asyncio.gather(
        *(
            metadata.DeleteVideo(
                api.DeleteVideoRequest(name=v.name, request_id=f"del-{v.name[-8:]}"), metadata=ALICE
            )
            for v in videos
        )
    )
    # a retry of the same call records nothing more
    await metadata.DeleteVideo(
        api.DeleteVideoRequest(name=videos[0].name, request_id=f"del-{videos[0].name[-8:]}"),
        metadata=ALICE,
    )
    seen, after = [], 0
    while True:  # pages of 4, as a follower resuming from its position would read them
        page = await metadata.ListVideoEvents(
            api.ListVideoEventsRequest(after_sequence=after, page_size=4), metadata=UPLOADER
        )
        if not page.events:
            break
        seen += page.events
        after = page.events[-1].sequence
    assert sorted(e.video for e in seen) == sorted(v.name for v in videos)
    assert [e.sequence for e in seen] == sorted({e.sequence for e in seen})
    assert {(e.owner, e.type) for e in seen} == {("users/alice", api.VIDEO_EVENT_TYPE_DELETED)}
    error = await rpc_error(metadata.ListVideoEvents(api.ListVideoEventsRequest(), metadata=ALICE))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED  # users never read the feed


async def test_request_id_makes_a_retried_create_apply_once(metadata):
    request = api.CreateVideoRequest(video=Video(title="once"), request_id="retry-1")
    first = await metadata.CreateVideo(request, metadata=ALICE)
    second = await metadata.CreateVideo(request, metadata=ALICE)
    assert first.name == second.name
    page = await metadata.ListVideos(api.ListVideosRequest(), metadata=ALICE)
    assert [v.title for v in page.videos] == ["once"]


async def test_lifecycle_through_status_updates_sets_cdn_urls(metadata):
    video = await create(metadata, "film")
    await move(metadata, video, S.VIDEO_STATUS_UPLOADED, source_size_bytes=1234)
    processing = await move(
        metadata,
        video,
        S.VIDEO_STATUS_PROCESSING,
        progress=Progress(completed_tasks=1, total_tasks=4, stage="encoding"),
    )
    assert processing.progress.total_tasks == 4
    ready = await move(
        metadata,
        video,
        S.VIDEO_STATUS_READY,
        result=api.ProcessingResult(
            renditions=[
                Rendition(
                    id="720p", width=1280, height=720, bandwidth=3_000_000, codecs="avc1.64001f"
                )
            ],
            manifest_path=f"{video.name}/master.m3u8",
            poster_path=f"{video.name}/poster.jpg",
        ),
    )
    assert ready.status == S.VIDEO_STATUS_READY and ready.source_size_bytes == 1234
    # private: the URLs carry a /media grant for this video in their path
    grant = re.fullmatch(
        rf"https://cdn\.example/media/{video.name}/(grant\.[^/]+)/master\.m3u8", ready.playback_url
    )
    assert grant is not None, ready.playback_url
    assert ready.poster_url == f"https://cdn.example/media/{video.name}/{grant.group(1)}/poster.jpg"
    assert ready.renditions[0].height == 720
    base = f"https://cdn.example/media/{video.name}/master.m3u8"
    public = await metadata.UpdateVideo(
        api.UpdateVideoRequest(
            video=Video(name=video.name, visibility=Visibility.VISIBILITY_PUBLIC),
            update_mask=FieldMask(paths=["visibility"]),
        ),
        metadata=ALICE,
    )
    assert public.playback_url == base  # public media needs no grant
    ready = public
    again = await move(metadata, video, S.VIDEO_STATUS_READY)
    assert again.etag == ready.etag  # a repeated terminal transition changes nothing


async def test_illegal_transitions_and_user_transitions_are_refused(metadata):
    video = await create(metadata, "film")
    error = await rpc_error(
        metadata.UpdateVideoStatus(
            api.UpdateVideoStatusRequest(name=video.name, status=S.VIDEO_STATUS_READY),
            metadata=bearer("operator", kind="service"),  # may make any move the lifecycle allows
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "UPLOADING" in error.details()
    assert details_of(error)[0].reason == "ILLEGAL_STATUS_TRANSITION"
    error = await rpc_error(
        metadata.UpdateVideoStatus(
            api.UpdateVideoStatusRequest(name=video.name, status=S.VIDEO_STATUS_UPLOADED),
            metadata=ALICE,
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    error = await rpc_error(move(metadata, video, S.VIDEO_STATUS_FAILED))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # FAILED needs a reason
    failed = await move(
        metadata, video, S.VIDEO_STATUS_FAILED, UPLOADER, failure_reason="upload abandoned"
    )
    assert failed.failure_reason == "upload abandoned"


async def test_watch_streams_every_change_until_ready(metadata):
    video = await create(metadata, "live")
    stream = metadata.WatchVideo(api.WatchVideoRequest(name=video.name), metadata=ALICE)
    first = await stream.read()
    assert first.video.status == S.VIDEO_STATUS_UPLOADING

    async def drive():
        await move(metadata, video, S.VIDEO_STATUS_UPLOADED)
        await asyncio.sleep(0.05)
        await move(
            metadata,
            video,
            S.VIDEO_STATUS_PROCESSING,
            progress=Progress(completed_tasks=0, total_tasks=2),
        )
        await asyncio.sleep(0.05)
        await move(metadata, video, S.VIDEO_STATUS_READY)

    driver = asyncio.create_task(drive())
    statuses = []
    while (message := await stream.read()) is not grpc.aio.EOF:
        statuses.append(message.video.status)
    await driver
    assert statuses[-1] == S.VIDEO_STATUS_READY
    assert S.VIDEO_STATUS_PROCESSING in statuses and statuses == sorted(statuses)


async def test_watch_of_someone_elses_private_video_is_not_found(metadata):
    video = await create(metadata, "mine")
    stream = metadata.WatchVideo(api.WatchVideoRequest(name=video.name), metadata=BOB)
    error = await rpc_error(stream.read())
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_behind_a_grant_only_cdn_every_video_url_carries_a_grant(tmp_path):
    settings = service_settings(
        data_dir=tmp_path, cdn_base_url="https://cdn.example/media", media_grant_all_videos=True
    )
    async with running_metadata(settings) as running:
        video = await create(running.stub, "open", visibility=Visibility.VISIBILITY_PUBLIC)
        await move(running.stub, video, S.VIDEO_STATUS_UPLOADED, source_size_bytes=1)
        await move(running.stub, video, S.VIDEO_STATUS_PROCESSING)
        ready = await move(
            running.stub,
            video,
            S.VIDEO_STATUS_READY,
            result=api.ProcessingResult(
                manifest_path=f"{video.name}/master.m3u8", poster_path=f"{video.name}/poster.jpg"
            ),
        )
        assert re.fullmatch(
            rf"https://cdn\.example/media/{video.name}/grant\.\d+\.[\w-]{{43}}/master\.m3u8",
            ready.playback_url,
        ), ready.playback_url
        got = await running.stub.GetVideo(
            api.GetVideoRequest(name=video.name), metadata=bearer("bob")
        )
        assert (
            "/grant." in got.playback_url and "/grant." in got.poster_url
        )  # anyone may read; still a grant
