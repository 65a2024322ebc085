import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from streamify.v1 import video_pb2 as _video_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateVideoRequest(_message.Message):
    __slots__ = ("video", "owner", "request_id", "source_size_bytes")
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    video: _video_pb2.Video
    owner: str
    request_id: str
    source_size_bytes: int
    def __init__(self, video: _Optional[_Union[_video_pb2.Video, _Mapping]] = ..., owner: _Optional[str] = ..., request_id: _Optional[str] = ..., source_size_bytes: _Optional[int] = ...) -> None: ...

class GetVideoRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListVideosRequest(_message.Message):
    __slots__ = ("owner", "status", "page_size", "page_token")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    owner: str
    status: _video_pb2.VideoStatus
    page_size: int
    page_token: str
    def __init__(self, owner: _Optional[str] = ..., status: _Optional[_Union[_video_pb2.VideoStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVideosResponse(_message.Message):
    __slots__ = ("videos", "next_page_token")
    VIDEOS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    videos: _containers.RepeatedCompositeFieldContainer[_video_pb2.Video]
    next_page_token: str
    def __init__(self, videos: _Optional[_Iterable[_Union[_video_pb2.Video, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateVideoRequest(_message.Message):
    __slots__ = ("video", "update_mask", "request_id")
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    video: _video_pb2.Video
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, video: _Optional[_Union[_video_pb2.Video, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteVideoRequest(_message.Message):
    __slots__ = ("name", "etag", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class WatchVideoRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchVideoResponse(_message.Message):
    __slots__ = ("video",)
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    video: _video_pb2.Video
    def __init__(self, video: _Optional[_Union[_video_pb2.Video, _Mapping]] = ...) -> None: ...

class UpdateVideoStatusRequest(_message.Message):
    __slots__ = ("name", "status", "failure_reason", "progress", "result", "request_id", "source_size_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: _video_pb2.VideoStatus
    failure_reason: str
    progress: _video_pb2.Progress
    result: ProcessingResult
    request_id: str
    source_size_bytes: int
    def __init__(self, name: _Optional[str] = ..., status: _Optional[_Union[_video_pb2.VideoStatus, str]] = ..., failure_reason: _Optional[str] = ..., progress: _Optional[_Union[_video_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[ProcessingResult, _Mapping]] = ..., request_id: _Optional[str] = ..., source_size_bytes: _Optional[int] = ...) -> None: ...

class ProcessingResult(_message.Message):
    __slots__ = ("renditions", "duration", "manifest_path", "poster_path")
    RENDITIONS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_PATH_FIELD_NUMBER: _ClassVar[int]
    POSTER_PATH_FIELD_NUMBER: _ClassVar[int]
    renditions: _containers.RepeatedCompositeFieldContainer[_video_pb2.Rendition]
    duration: _duration_pb2.Duration
    manifest_path: str
    poster_path: str
    def __init__(self, renditions: _Optional[_Iterable[_Union[_video_pb2.Rendition, _Mapping]]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., manifest_path: _Optional[str] = ..., poster_path: _Optional[str] = ...) -> None: ...
