"""Mapping between stored rows and the API's Video message."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf.json_format import MessageToDict, ParseDict

from streamify.core import names
from streamify.core.clock import duration_of, timestamp_of
from streamify.metadata.models import VideoRow
from streamify.v1.video_pb2 import Progress, Rendition, Video, VideoStatus, Visibility


def etag_of(row: VideoRow) -> str:
    return f"v{row.version}"


def renditions_to_json(renditions: Iterable[Rendition]) -> list[dict[str, Any]]:
    return [MessageToDict(r, preserving_proto_field_name=True) for r in renditions]


def to_proto(row: VideoRow, cdn_base_url: str) -> Video:
    base = cdn_base_url.rstrip("/")
    video = Video(
        name=names.VIDEOS.name(row.id),
        owner=names.USERS.name(row.owner),
        title=row.title,
        description=row.description,
        visibility=Visibility.ValueType(row.visibility),
        status=VideoStatus.ValueType(row.status),
        failure_reason=row.failure_reason,
        source_size_bytes=row.source_size_bytes,
        source_upload=names.UPLOADS.name(row.source_upload) if row.source_upload else "",
        renditions=[ParseDict(r, Rendition()) for r in row.renditions],
        poster_url=f"{base}/{row.poster_path}" if row.poster_path else "",
        playback_url=f"{base}/{row.manifest_path}" if row.manifest_path else "",
        create_time=timestamp_of(row.create_time_us),
        update_time=timestamp_of(row.update_time_us),
        etag=etag_of(row),
    )
    if row.duration_us:
        video.duration.CopyFrom(duration_of(row.duration_us))
    if row.progress_total or row.progress_stage:
        video.progress.CopyFrom(
            Progress(
                completed_tasks=row.progress_completed,
                total_tasks=row.progress_total,
                stage=row.progress_stage,
            )
        )
    return video
