"""The orchestrator's tunables: the `transcode_*` fields of Settings, as one frozen value that the
pure DAG and the store can take without knowing about environment variables.

The defaults are the Settings defaults (one definition: streamify.core.config); tests pass an
OrchestratorOptions with the fields they change to app.run(options=...).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from streamify.core.config import Settings


def _default(name: str) -> Any:
    return field(default=Settings.model_fields[f"transcode_{name}"].default)


@dataclass(frozen=True)
class OrchestratorOptions:
    orchestrator_id: str = _default("orchestrator_id")  # "" = host-pid-random (dispatch.py)
    lease_seconds: float = _default("lease_seconds")
    heartbeat_interval_seconds: float = _default("heartbeat_interval_seconds")
    sweep_interval_seconds: float = _default("sweep_interval_seconds")
    dispatch_poll_seconds: float = _default("dispatch_poll_seconds")
    max_attempts: int = _default("max_attempts")
    job_deadline_seconds: float = _default("job_deadline_seconds")
    segment_seconds: float = _default("segment_seconds")
    segments_per_chunk: int = _default("segments_per_chunk")
    first_chunk_segments: int = _default("first_chunk_segments")
    audio_bitrate: int = _default("audio_bitrate")
    poster_max_width: int = _default("poster_max_width")
    max_width: int = _default("max_width")
    max_height: int = _default("max_height")
    source_url_ttl_seconds: int = _default("source_url_ttl_seconds")
    progress_interval_seconds: float = _default("progress_interval_seconds")
    queue_name: str = _default("queue_name")

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.lease_seconds <= 0 or self.segments_per_chunk < 1:
            raise ValueError("max_attempts, lease_seconds and segments_per_chunk must be positive")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> OrchestratorOptions:
        """Each field from `settings.transcode_<field>`."""
        values = {f.name: getattr(settings, f"transcode_{f.name}") for f in fields(cls)}
        return cls(**(values | overrides))
