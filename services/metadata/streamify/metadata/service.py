"""The MetadataService servicer: authorization, the state machine and cache invalidation
around the durable store."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from typing import TypeVar

import grpc
from google.protobuf.empty_pb2 import Empty
from google.protobuf.message import Message
from sqlalchemy.orm import Session

from streamify.core import errors, media_grants, names
from streamify.core.auth import Principal, current_principal
from streamify.core.clock import microseconds_of, now_us, timestamp_of
from streamify.core.db import run_in_thread
from streamify.core.token_keys import OPERATOR
from streamify.metadata import state_machine
from streamify.metadata.changes import VideoChanges
from streamify.metadata.convert import etag_of, renditions_to_json, to_proto
from streamify.metadata.models import VideoRow
from streamify.metadata.page_tokens import InvalidPageToken, PagePosition, PageTokenCodec
from streamify.metadata.reader import VideoReader
from streamify.metadata.store import Mutation, VideoStore, locked_video, record_event
from streamify.metadata.watch_limit import WatchLimit
from streamify.v1 import metadata_service_pb2 as api
from streamify.v1 import metadata_service_pb2_grpc
from streamify.v1.video_pb2 import Video, Visibility

USER_WRITABLE_FIELDS = frozenset({"title", "description", "visibility"})
DEFAULT_PAGE_SIZE = 20
DEFAULT_EVENTS_PAGE_SIZE = 100
# How often a WatchVideo stream re-reads its video, to see changes made through other replicas.
WATCH_REFRESH_SECONDS = 1.0
DEFAULT_WATCHES_PER_USER = 10
READABLE_BY_ANYONE = frozenset({Visibility.VISIBILITY_PUBLIC, Visibility.VISIBILITY_UNLISTED})
M = TypeVar("M", bound=Message)


def new_video_id() -> str:
    # 80 random bits as 16 lowercase base32 characters: URL- and resource-name-safe.
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()


def _id_in(collection: names.Collection, name: str, field: str, example: str) -> str:
    resource_id = collection.id_of(name)
    if resource_id is None:
        raise errors.invalid_argument([(field, f"must be a name like `{example}`, got {name!r}")])
    return resource_id


def video_id_of(name: str, field: str = "name") -> str:
    return _id_in(names.VIDEOS, name, field, "videos/abc123")


def user_id_of(owner: str, field: str = "owner") -> str:
    return _id_in(names.USERS, owner, field, "users/alice")


def can_read(principal: Principal, video: Video) -> bool:
    return (
        principal.is_service
        or video.owner == principal.user_name
        or video.visibility in READABLE_BY_ANYONE
    )


def check_writable(principal: Principal, row: VideoRow, name: str) -> None:
    if principal.is_service or row.owner == principal.subject:
        return
    if row.visibility in READABLE_BY_ANYONE:
        raise errors.permission_denied(f"only the owner may change {name}")
    raise errors.not_found(name)


class MetadataService(metadata_service_pb2_grpc.MetadataServiceServicer):
    def __init__(
        self,
        *,
        store: VideoStore,
        reader: VideoReader,
        changes: VideoChanges,
        page_tokens: PageTokenCodec,
        cdn_base_url: str,
        grant_key: bytes,
        grant_ttl_seconds: float,
        grant_all_videos: bool = False,
        watch_limit: WatchLimit | None = None,
    ) -> None:
        self._watch_limit = watch_limit or WatchLimit(DEFAULT_WATCHES_PER_USER)
        self._grant_key = grant_key
        self._grant_ttl = grant_ttl_seconds
        self._grant_all_videos = grant_all_videos
        self._store = store
        self._reader = reader
        self._changes = changes
        self._page_tokens = page_tokens
        self._cdn_base_url = cdn_base_url

    @property
    def store(self) -> VideoStore:
        """The SQL store (the app's sweeper of expired request ids works on it)."""
        return self._store

    # --- reads ------------------------------------------------------------------------------

    async def GetVideo(
        self,
        request: api.GetVideoRequest,
        context: grpc.aio.ServicerContext[api.GetVideoRequest, Video],
    ) -> Video:
        return self._present(await self._readable(request.name, current_principal()))

    async def ListVideos(
        self,
        request: api.ListVideosRequest,
        context: grpc.aio.ServicerContext[api.ListVideosRequest, api.ListVideosResponse],
    ) -> api.ListVideosResponse:
        principal = current_principal()
        if request.owner:
            owner: str | None = user_id_of(request.owner)
            public_only = not (principal.is_service or owner == principal.subject)
        else:
            owner = None if principal.is_service else principal.subject
            public_only = False
        query = f"{owner}|{request.status}|{public_only}"
        after = None
        if request.page_token:
            try:
                after = self._page_tokens.decode(query, request.page_token)
            except InvalidPageToken as exc:
                raise errors.invalid_argument([("page_token", str(exc))]) from None
        page_size = request.page_size or DEFAULT_PAGE_SIZE
        rows = await run_in_thread(
            lambda: self._store.list_page(
                owner=owner,
                status=request.status or None,
                public_only=public_only,
                after=after,
                limit=page_size + 1,
            )
        )
        response = api.ListVideosResponse(
            videos=[self._present(to_proto(row, self._cdn_base_url)) for row in rows[:page_size]]
        )
        if len(rows) > page_size:
            last = rows[page_size - 1]
            response.next_page_token = self._page_tokens.encode(
                query, PagePosition(last.create_time_us, last.id)
            )
        return response

    async def WatchVideo(
        self,
        request: api.WatchVideoRequest,
        context: grpc.aio.ServicerContext[api.WatchVideoRequest, api.WatchVideoResponse],
    ) -> AsyncIterator[api.WatchVideoResponse]:
        principal = current_principal()
        video_id = video_id_of(request.name)
        last_etag = None
        with self._watch_limit.slot(principal):
            while True:
                video = await self._reader.get_fresh(video_id)
                if video is None or not can_read(principal, video):
                    raise errors.not_found(request.name)
                if video.etag != last_etag:
                    last_etag = video.etag
                    yield api.WatchVideoResponse(video=self._present(video))
                if video.status in state_machine.TERMINAL:
                    return
                await self._changes.wait(video_id, WATCH_REFRESH_SECONDS)

    # --- writes -----------------------------------------------------------------------------

    async def CreateVideo(
        self,
        request: api.CreateVideoRequest,
        context: grpc.aio.ServicerContext[api.CreateVideoRequest, Video],
    ) -> Video:
        principal = current_principal()
        if not request.video.title:
            raise errors.invalid_argument([("video.title", "is required")])
        owner = self._owner_for_create(principal, request.owner)

        def create(session: Session) -> bytes:
            now = now_us()
            row = VideoRow(
                id=new_video_id(),
                owner=owner,
                title=request.video.title,
                description=request.video.description,
                visibility=request.video.visibility or Visibility.VISIBILITY_PRIVATE,
                status=state_machine.UPLOADING,
                failure_reason="",
                source_size_bytes=request.source_size_bytes,
                duration_us=0,
                renditions=[],
                manifest_path="",
                poster_path="",
                progress_completed=0,
                progress_total=0,
                progress_stage="",
                create_time_us=now,
                update_time_us=now,
                version=1,
            )
            session.add(row)
            session.flush()
            return self._serialized(row)

        video = await self._mutate(principal, "CreateVideo", request.request_id, create, Video)
        await self._after_write(video_id_of(video.name))
        return self._present(video)

    async def UpdateVideo(
        self,
        request: api.UpdateVideoRequest,
        context: grpc.aio.ServicerContext[api.UpdateVideoRequest, Video],
    ) -> Video:
        principal = current_principal()
        name = request.video.name
        video_id = video_id_of(name, "video.name")
        paths = set(request.update_mask.paths)
        not_writable = sorted(paths - USER_WRITABLE_FIELDS)
        if not paths or not_writable:
            raise errors.invalid_argument(
                [
                    (
                        "update_mask.paths",
                        f"may name only {', '.join(sorted(USER_WRITABLE_FIELDS))}"
                        + (f"; not {', '.join(not_writable)}" if not_writable else ""),
                    )
                ]
            )
        if "title" in paths and not request.video.title:
            raise errors.invalid_argument([("video.title", "must not be empty")])

        def update(session: Session) -> bytes:
            row = self._locked(session, video_id, name)
            check_writable(principal, row, name)
            self._check_etag(row, request.video.etag, name)
            if "title" in paths:
                row.title = request.video.title
            if "description" in paths:
                row.description = request.video.description
            if "visibility" in paths:
                row.visibility = request.video.visibility or Visibility.VISIBILITY_PRIVATE
            self._touch(row)
            return self._serialized(row)

        video = await self._mutate(principal, "UpdateVideo", request.request_id, update, Video)
        await self._after_write(video_id)
        return self._present(video)

    async def DeleteVideo(
        self,
        request: api.DeleteVideoRequest,
        context: grpc.aio.ServicerContext[api.DeleteVideoRequest, Empty],
    ) -> Empty:
        principal = current_principal()
        video_id = video_id_of(request.name)

        def delete(session: Session) -> bytes:
            row = self._locked(session, video_id, request.name)
            check_writable(principal, row, request.name)
            self._check_etag(row, request.etag, request.name)
            session.delete(row)
            record_event(session, row, api.VideoEventType.VIDEO_EVENT_TYPE_DELETED)
            return b""

        await self._mutate(principal, "DeleteVideo", request.request_id, delete, Empty)
        await self._after_write(video_id)
        return Empty()

    async def ListVideoEvents(
        self,
        request: api.ListVideoEventsRequest,
        context: grpc.aio.ServicerContext[api.ListVideoEventsRequest, api.ListVideoEventsResponse],
    ) -> api.ListVideoEventsResponse:
        if not current_principal().is_service:
            raise errors.permission_denied("only Streamify services may read video events")
        rows = await run_in_thread(
            self._store.events_after,
            request.after_sequence,
            request.page_size or DEFAULT_EVENTS_PAGE_SIZE,
        )
        return api.ListVideoEventsResponse(
            events=[
                api.VideoEvent(
                    sequence=row.id,
                    video=names.VIDEOS.name(row.video_id),
                    owner=names.USERS.name(row.owner),
                    type=api.VideoEventType.ValueType(row.kind),
                    create_time=timestamp_of(row.create_time_us),
                )
                for row in rows
            ]
        )

    async def UpdateVideoStatus(
        self,
        request: api.UpdateVideoStatusRequest,
        context: grpc.aio.ServicerContext[api.UpdateVideoStatusRequest, Video],
    ) -> Video:
        principal = current_principal()
        if not principal.is_service:
            raise errors.permission_denied("only Streamify services may change a video's status")
        if request.status == state_machine.FAILED and not request.failure_reason:
            raise errors.invalid_argument([("failure_reason", "is required when status is FAILED")])
        video_id = video_id_of(request.name)

        def transition(session: Session) -> bytes:
            row = self._locked(session, video_id, request.name)
            current, new = row.status, request.status
            if principal.subject != OPERATOR and not state_machine.may_move(
                principal.subject, current, new
            ):
                raise errors.permission_denied(
                    f"the {principal.subject!r} service does not move a video from "
                    f"{state_machine.status_label(current)} to {state_machine.status_label(new)}",
                    reason="STATUS_NOT_ALLOWED",
                )
            if not state_machine.is_allowed(current, new):
                raise errors.failed_precondition(
                    f"{request.name} is {state_machine.status_label(current)} and cannot become "
                    f"{state_machine.status_label(new)}",
                    reason="ILLEGAL_STATUS_TRANSITION",
                )
            if current == new and current in state_machine.TERMINAL:
                return self._serialized(row)
            row.status = new
            row.failure_reason = request.failure_reason if new == state_machine.FAILED else ""
            if request.source_size_bytes:
                row.source_size_bytes = request.source_size_bytes
            if request.source_upload:
                row.source_upload = names.UPLOADS.id_in(request.source_upload)
            if request.HasField("progress"):
                row.progress_completed = request.progress.completed_tasks
                row.progress_total = request.progress.total_tasks
                row.progress_stage = request.progress.stage
            if request.HasField("result"):
                result = request.result
                row.renditions = renditions_to_json(result.renditions)
                row.duration_us = microseconds_of(result.duration)
                row.manifest_path = result.manifest_path
                row.poster_path = result.poster_path
            self._touch(row)
            return self._serialized(row)

        video = await self._mutate(
            principal, "UpdateVideoStatus", request.request_id, transition, Video
        )
        await self._after_write(video_id)
        return self._present(video)

    # --- helpers ----------------------------------------------------------------------------

    def _serialized(self, row: VideoRow) -> bytes:
        """The row as the Video a mutation answers (and stores for replay)."""
        data: bytes = to_proto(row, self._cdn_base_url).SerializeToString()  # Message is untyped
        return data

    def _present(self, video: Video) -> Video:
        """What a reader gets: a private video's media URLs carry a grant for /media (the caller
        was already allowed to read the video), so its owner's player can fetch them; every
        video's do where the CDN checks grants only (grant_all_videos: CloudFront)."""
        if not (video.playback_url or video.poster_url):
            return video
        if video.visibility in READABLE_BY_ANYONE and not self._grant_all_videos:
            return video
        video_id = video_id_of(video.name)
        grant = media_grants.grant_segment(self._grant_key, video_id, self._grant_ttl)
        signed = Video()
        signed.CopyFrom(video)
        if signed.playback_url:
            signed.playback_url = media_grants.with_grant(signed.playback_url, video_id, grant)
        if signed.poster_url:
            signed.poster_url = media_grants.with_grant(signed.poster_url, video_id, grant)
        return signed

    async def _readable(self, name: str, principal: Principal) -> Video:
        video = await self._reader.get(video_id_of(name))
        if video is None or not can_read(principal, video):
            raise errors.not_found(name)
        return video

    @staticmethod
    def _owner_for_create(principal: Principal, requested: str) -> str:
        if principal.is_service:
            if not requested:
                raise errors.invalid_argument(
                    [("owner", "is required when a service creates a video")]
                )
            return user_id_of(requested)
        if requested and user_id_of(requested) != principal.subject:
            raise errors.permission_denied("users can only create videos they own")
        return principal.subject

    @staticmethod
    def _locked(session: Session, video_id: str, name: str) -> VideoRow:
        row = locked_video(session, video_id)
        if row is None:
            raise errors.not_found(name)
        return row

    @staticmethod
    def _check_etag(row: VideoRow, etag: str, name: str) -> None:
        if etag and etag != etag_of(row):
            raise errors.aborted(
                f"{name} changed since it was read (etag {etag}, now {etag_of(row)}); read it again",
                reason="ETAG_MISMATCH",
            )

    @staticmethod
    def _touch(row: VideoRow) -> None:
        row.version += 1
        row.update_time_us = now_us()

    async def _mutate(
        self,
        principal: Principal,
        method: str,
        request_id: str,
        change: Mutation,
        response_type: type[M],
    ) -> M:
        data = await run_in_thread(
            self._store.mutate, f"{principal.kind}:{principal.subject}", method, request_id, change
        )
        response: M = response_type.FromString(
            data
        )  # protobuf's Message is untyped: FromString is Any
        return response

    async def _after_write(self, video_id: str) -> None:
        await self._reader.invalidate(video_id)
        self._changes.notify(video_id)
