"""The orchestrator's tunables, read from Settings.

The `transcode_*` fields are not in streamify.core.config yet; until they are, they are read
with getattr and these defaults (so STREAMIFY_TRANSCODE_* variables have no effect until the
fields exist). Tests pass an OrchestratorOptions directly to app.run(options=...).
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, fields
from typing import Any


def default_orchestrator_id() -> str:
    host = socket.gethostname().split(".")[0][:40] or "orchestrator"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class OrchestratorOptions:
    orchestrator_id: str = ""  # "" = host-pid-random, unique per process
    lease_seconds: float = 60.0  # a task's lease unless extended by heartbeats/progress
    heartbeat_interval_seconds: float = 10.0  # told to workers in WorkerWelcome
    sweep_interval_seconds: float = 5.0  # expired leases, job deadlines, missed reports
    dispatch_poll_seconds: float = 1.0  # look for runnable tasks created by other replicas
    max_attempts: int = 3  # attempts of one task before its job fails
    job_deadline_seconds: float = 6 * 3600.0  # a job still running after this fails
    segment_seconds: float = 4.0
    segments_per_chunk: int = 4
    first_chunk_segments: int = 1  # a short first chunk: the first playable rung comes sooner
    audio_bitrate: int = 128_000
    poster_max_width: int = 1280
    max_width: int = 7680  # larger sources fail (media.ladder)
    max_height: int = 4320
    source_url_ttl_seconds: int = 6 * 3600  # pre-signed GET URLs given to workers
    progress_interval_seconds: float = 1.0  # at most one progress report per job this often
    queue_name: str = "jobs"  # the Upload service publishes VideoUploadedEvent here

    def __post_init__(self) -> None:
        if not self.orchestrator_id:
            object.__setattr__(self, "orchestrator_id", default_orchestrator_id())
        if self.max_attempts < 1 or self.lease_seconds <= 0 or self.segments_per_chunk < 1:
            raise ValueError("max_attempts, lease_seconds and segments_per_chunk must be positive")

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> OrchestratorOptions:
        """Each field from `settings.transcode_<field>` when present, else its default."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = getattr(settings, f"transcode_{f.name}", None)
            if value is not None:
                values[f.name] = value
        values.update(overrides)
        return cls(**values)
