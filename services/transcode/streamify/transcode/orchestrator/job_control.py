"""What job control (TranscodeService, the queue consumer) needs of the orchestrator: read,
list, create, cancel and retry jobs. `dispatch.Orchestrator` provides it; the store stays
behind it, so its callers never reach the database."""

from __future__ import annotations

from typing import Protocol

from streamify.transcode.orchestrator.store import Snapshot


class JobControl(Protocol):
    async def get_job(self, job_id: str) -> Snapshot | None:
        """The job with its tasks, None if there is none."""
        ...

    async def list_jobs(
        self, *, state: int, owner: str | None, limit: int, after: tuple[int, str] | None
    ) -> list[Snapshot]:
        """Newest first; `after` = (create_time_us, id) of the last job of the previous page."""
        ...

    async def create_job(
        self, video_id: str, owner: str, bucket: str, key: str, size: int
    ) -> Snapshot:
        """The video's job, created if there is none (idempotent per video)."""
        ...

    async def cancel_job(self, job_id: str, request_id: str) -> Snapshot:
        """Raises KeyError (no such job) or store.Conflict (not active)."""
        ...

    async def retry_job(self, job_id: str, request_id: str) -> Snapshot:
        """Raises KeyError (no such job) or store.Conflict (not FAILED or CANCELLED)."""
        ...
