"""Media work of the transcode workers, on plain dataclasses and local paths/URLs.

Probe a source, plan the ladder and the chunk grid, encode one chunk of video into every
rung from a single decode, encode the whole audio track, extract a poster and write HLS
playlists. The gRPC worker and the orchestrator call these functions; nothing here knows
about protobufs, storage or the network beyond reading a source URL.
"""

from streamify.transcode.media.audio import encode_audio
from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.media.ladder import (
    DEFAULT_RUNGS,
    Rung,
    plan_chunks,
    plan_duration,
    plan_frame_rate,
    plan_ladder,
    plan_poster_time,
    plan_ts_offset,
)
from streamify.transcode.media.models import (
    AudioInfo,
    AudioOutput,
    Chunk,
    MediaInfo,
    Rendition,
    RenditionChunkOutput,
    Segment,
    VideoInfo,
)
from streamify.transcode.media.playlists import (
    AudioRendition,
    Bandwidth,
    Variant,
    master_playlist,
    media_playlist,
)
from streamify.transcode.media.poster import extract_poster
from streamify.transcode.media.probe import probe
from streamify.transcode.media.video_chunk import encode_video_chunk

__all__ = [
    "DEFAULT_RUNGS",
    "AudioInfo",
    "AudioOutput",
    "AudioRendition",
    "Bandwidth",
    "Chunk",
    "MediaError",
    "MediaInfo",
    "Reason",
    "Rendition",
    "RenditionChunkOutput",
    "Rung",
    "Segment",
    "Variant",
    "VideoInfo",
    "encode_audio",
    "encode_video_chunk",
    "extract_poster",
    "master_playlist",
    "media_playlist",
    "plan_chunks",
    "plan_duration",
    "plan_frame_rate",
    "plan_ladder",
    "plan_ts_offset",
    "plan_poster_time",
    "probe",
]
