import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConnectRequest(_message.Message):
    __slots__ = ("hello", "heartbeat", "progress", "result", "failure")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    hello: WorkerHello
    heartbeat: WorkerHeartbeat
    progress: TaskProgress
    result: TaskResult
    failure: TaskFailure
    def __init__(self, hello: _Optional[_Union[WorkerHello, _Mapping]] = ..., heartbeat: _Optional[_Union[WorkerHeartbeat, _Mapping]] = ..., progress: _Optional[_Union[TaskProgress, _Mapping]] = ..., result: _Optional[_Union[TaskResult, _Mapping]] = ..., failure: _Optional[_Union[TaskFailure, _Mapping]] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("welcome", "assignment", "cancellation")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    CANCELLATION_FIELD_NUMBER: _ClassVar[int]
    welcome: WorkerWelcome
    assignment: TaskAssignment
    cancellation: TaskCancellation
    def __init__(self, welcome: _Optional[_Union[WorkerWelcome, _Mapping]] = ..., assignment: _Optional[_Union[TaskAssignment, _Mapping]] = ..., cancellation: _Optional[_Union[TaskCancellation, _Mapping]] = ...) -> None: ...

class WorkerHello(_message.Message):
    __slots__ = ("worker_id", "slots", "hostname", "version", "encoders")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENCODERS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    slots: int
    hostname: str
    version: str
    encoders: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, worker_id: _Optional[str] = ..., slots: _Optional[int] = ..., hostname: _Optional[str] = ..., version: _Optional[str] = ..., encoders: _Optional[_Iterable[str]] = ...) -> None: ...

class WorkerWelcome(_message.Message):
    __slots__ = ("orchestrator_id", "heartbeat_interval")
    ORCHESTRATOR_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    orchestrator_id: str
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, orchestrator_id: _Optional[str] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class WorkerHeartbeat(_message.Message):
    __slots__ = ("task_ids",)
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class TaskAssignment(_message.Message):
    __slots__ = ("task_id", "lease_id", "lease_expire_time", "attempt", "probe", "video_chunk", "audio", "poster")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PROBE_FIELD_NUMBER: _ClassVar[int]
    VIDEO_CHUNK_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    POSTER_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    lease_id: str
    lease_expire_time: _timestamp_pb2.Timestamp
    attempt: int
    probe: ProbeSpec
    video_chunk: VideoChunkSpec
    audio: AudioSpec
    poster: PosterSpec
    def __init__(self, task_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., lease_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[int] = ..., probe: _Optional[_Union[ProbeSpec, _Mapping]] = ..., video_chunk: _Optional[_Union[VideoChunkSpec, _Mapping]] = ..., audio: _Optional[_Union[AudioSpec, _Mapping]] = ..., poster: _Optional[_Union[PosterSpec, _Mapping]] = ...) -> None: ...

class SourceRef(_message.Message):
    __slots__ = ("bucket", "key", "url", "size_bytes")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    url: str
    size_bytes: int
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., url: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class OutputRef(_message.Message):
    __slots__ = ("bucket", "prefix")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ...) -> None: ...

class ProbeSpec(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: SourceRef
    def __init__(self, source: _Optional[_Union[SourceRef, _Mapping]] = ...) -> None: ...

class VideoChunkSpec(_message.Message):
    __slots__ = ("source", "chunk_index", "start", "end", "segment_duration", "first_segment_index", "renditions", "output", "output_ts_offset", "rotation_degrees", "frame_rate")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_DURATION_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEGMENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    RENDITIONS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TS_OFFSET_FIELD_NUMBER: _ClassVar[int]
    ROTATION_DEGREES_FIELD_NUMBER: _ClassVar[int]
    FRAME_RATE_FIELD_NUMBER: _ClassVar[int]
    source: SourceRef
    chunk_index: int
    start: _duration_pb2.Duration
    end: _duration_pb2.Duration
    segment_duration: _duration_pb2.Duration
    first_segment_index: int
    renditions: _containers.RepeatedCompositeFieldContainer[RenditionSpec]
    output: OutputRef
    output_ts_offset: _duration_pb2.Duration
    rotation_degrees: int
    frame_rate: float
    def __init__(self, source: _Optional[_Union[SourceRef, _Mapping]] = ..., chunk_index: _Optional[int] = ..., start: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., end: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., segment_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., first_segment_index: _Optional[int] = ..., renditions: _Optional[_Iterable[_Union[RenditionSpec, _Mapping]]] = ..., output: _Optional[_Union[OutputRef, _Mapping]] = ..., output_ts_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., rotation_degrees: _Optional[int] = ..., frame_rate: _Optional[float] = ...) -> None: ...

class RenditionSpec(_message.Message):
    __slots__ = ("id", "width", "height", "bitrate", "max_bitrate", "buffer_size", "profile", "preset")
    ID_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BITRATE_FIELD_NUMBER: _ClassVar[int]
    MAX_BITRATE_FIELD_NUMBER: _ClassVar[int]
    BUFFER_SIZE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    id: str
    width: int
    height: int
    bitrate: int
    max_bitrate: int
    buffer_size: int
    profile: str
    preset: str
    def __init__(self, id: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., bitrate: _Optional[int] = ..., max_bitrate: _Optional[int] = ..., buffer_size: _Optional[int] = ..., profile: _Optional[str] = ..., preset: _Optional[str] = ...) -> None: ...

class AudioSpec(_message.Message):
    __slots__ = ("source", "bitrate", "segment_duration", "output", "output_ts_offset", "duration")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    BITRATE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_DURATION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TS_OFFSET_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    source: SourceRef
    bitrate: int
    segment_duration: _duration_pb2.Duration
    output: OutputRef
    output_ts_offset: _duration_pb2.Duration
    duration: _duration_pb2.Duration
    def __init__(self, source: _Optional[_Union[SourceRef, _Mapping]] = ..., bitrate: _Optional[int] = ..., segment_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., output: _Optional[_Union[OutputRef, _Mapping]] = ..., output_ts_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class PosterSpec(_message.Message):
    __slots__ = ("source", "at", "max_width", "output", "rotation_degrees")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    MAX_WIDTH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ROTATION_DEGREES_FIELD_NUMBER: _ClassVar[int]
    source: SourceRef
    at: _duration_pb2.Duration
    max_width: int
    output: OutputRef
    rotation_degrees: int
    def __init__(self, source: _Optional[_Union[SourceRef, _Mapping]] = ..., at: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_width: _Optional[int] = ..., output: _Optional[_Union[OutputRef, _Mapping]] = ..., rotation_degrees: _Optional[int] = ...) -> None: ...

class TaskProgress(_message.Message):
    __slots__ = ("task_id", "lease_id", "fraction")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    lease_id: str
    fraction: float
    def __init__(self, task_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., fraction: _Optional[float] = ...) -> None: ...

class TaskResult(_message.Message):
    __slots__ = ("task_id", "lease_id", "elapsed", "probe", "video_chunk", "audio", "poster")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_FIELD_NUMBER: _ClassVar[int]
    PROBE_FIELD_NUMBER: _ClassVar[int]
    VIDEO_CHUNK_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    POSTER_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    lease_id: str
    elapsed: _duration_pb2.Duration
    probe: ProbeResult
    video_chunk: ChunkResult
    audio: AudioResult
    poster: PosterResult
    def __init__(self, task_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., elapsed: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., probe: _Optional[_Union[ProbeResult, _Mapping]] = ..., video_chunk: _Optional[_Union[ChunkResult, _Mapping]] = ..., audio: _Optional[_Union[AudioResult, _Mapping]] = ..., poster: _Optional[_Union[PosterResult, _Mapping]] = ...) -> None: ...

class TaskFailure(_message.Message):
    __slots__ = ("task_id", "lease_id", "error", "retryable")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    lease_id: str
    error: str
    retryable: bool
    def __init__(self, task_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., error: _Optional[str] = ..., retryable: _Optional[bool] = ...) -> None: ...

class TaskCancellation(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ProbeResult(_message.Message):
    __slots__ = ("format", "duration", "video", "audio", "clock_jumps")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    CLOCK_JUMPS_FIELD_NUMBER: _ClassVar[int]
    format: str
    duration: _duration_pb2.Duration
    video: VideoStreamInfo
    audio: AudioStreamInfo
    clock_jumps: int
    def __init__(self, format: _Optional[str] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., video: _Optional[_Union[VideoStreamInfo, _Mapping]] = ..., audio: _Optional[_Union[AudioStreamInfo, _Mapping]] = ..., clock_jumps: _Optional[int] = ...) -> None: ...

class VideoStreamInfo(_message.Message):
    __slots__ = ("codec", "width", "height", "rotation_degrees", "frame_rate", "pixel_format", "frame_count", "duration", "sample_aspect_ratio")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROTATION_DEGREES_FIELD_NUMBER: _ClassVar[int]
    FRAME_RATE_FIELD_NUMBER: _ClassVar[int]
    PIXEL_FORMAT_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_ASPECT_RATIO_FIELD_NUMBER: _ClassVar[int]
    codec: str
    width: int
    height: int
    rotation_degrees: int
    frame_rate: float
    pixel_format: str
    frame_count: int
    duration: _duration_pb2.Duration
    sample_aspect_ratio: float
    def __init__(self, codec: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., rotation_degrees: _Optional[int] = ..., frame_rate: _Optional[float] = ..., pixel_format: _Optional[str] = ..., frame_count: _Optional[int] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., sample_aspect_ratio: _Optional[float] = ...) -> None: ...

class AudioStreamInfo(_message.Message):
    __slots__ = ("codec", "sample_rate", "channels")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    codec: str
    sample_rate: int
    channels: int
    def __init__(self, codec: _Optional[str] = ..., sample_rate: _Optional[int] = ..., channels: _Optional[int] = ...) -> None: ...

class SegmentInfo(_message.Message):
    __slots__ = ("index", "key", "duration", "size_bytes")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    index: int
    key: str
    duration: _duration_pb2.Duration
    size_bytes: int
    def __init__(self, index: _Optional[int] = ..., key: _Optional[str] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class RenditionChunk(_message.Message):
    __slots__ = ("rendition_id", "segments", "codecs", "init_key")
    RENDITION_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    CODECS_FIELD_NUMBER: _ClassVar[int]
    INIT_KEY_FIELD_NUMBER: _ClassVar[int]
    rendition_id: str
    segments: _containers.RepeatedCompositeFieldContainer[SegmentInfo]
    codecs: str
    init_key: str
    def __init__(self, rendition_id: _Optional[str] = ..., segments: _Optional[_Iterable[_Union[SegmentInfo, _Mapping]]] = ..., codecs: _Optional[str] = ..., init_key: _Optional[str] = ...) -> None: ...

class ChunkResult(_message.Message):
    __slots__ = ("renditions",)
    RENDITIONS_FIELD_NUMBER: _ClassVar[int]
    renditions: _containers.RepeatedCompositeFieldContainer[RenditionChunk]
    def __init__(self, renditions: _Optional[_Iterable[_Union[RenditionChunk, _Mapping]]] = ...) -> None: ...

class AudioResult(_message.Message):
    __slots__ = ("segments", "codecs", "init_key")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    CODECS_FIELD_NUMBER: _ClassVar[int]
    INIT_KEY_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[SegmentInfo]
    codecs: str
    init_key: str
    def __init__(self, segments: _Optional[_Iterable[_Union[SegmentInfo, _Mapping]]] = ..., codecs: _Optional[str] = ..., init_key: _Optional[str] = ...) -> None: ...

class PosterResult(_message.Message):
    __slots__ = ("key", "width", "height")
    KEY_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    key: str
    width: int
    height: int
    def __init__(self, key: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...
