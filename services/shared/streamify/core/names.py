"""Resource names (AIP-122): one definition of each collection and of the ids it holds.

A resource's name is ``{collection}/{id}``: ``videos/abc123``, ``uploads/q7x…``,
``transcodeJobs/abc123``, ``users/alice``; a task of a job is
``transcodeJobs/{job}/tasks/{task}``. The protos' ``buf.validate`` patterns on name fields
are these same expressions (``tests/contract/test_names.py`` keeps them equal), so a name
that passed request validation always parses here. Pure: no I/O, no settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ID",
    "SUBJECT",
    "TRANSCODE_JOBS",
    "UPLOADS",
    "USERS",
    "VIDEOS",
    "Collection",
    "is_subject",
    "parse_task",
    "task",
]

# Ids the services mint (lowercase base32, or a video's id reused for its job): DNS-label-like,
# so they are safe in URLs, object keys and Kubernetes names alike.
ID = r"[a-z0-9][a-z0-9-]{0,62}"
# A user's or a service's subject, as it appears in tokens: `_` and `.` also allowed
# (Unix user names, e-mail-like local parts).
SUBJECT = r"[a-z0-9][a-z0-9_.-]{0,62}"


@dataclass(frozen=True, slots=True)
class Collection:
    """One collection of resources: formats and parses its names."""

    plural: str
    id_pattern: str = ID

    @property
    def pattern(self) -> str:
        """The anchored expression a name of this collection matches (the protos' pattern)."""
        return rf"^{self.plural}/{self.id_pattern}$"

    def name(self, resource_id: str) -> str:
        return f"{self.plural}/{resource_id}"

    def id_of(self, name: str) -> str | None:
        """The id in `name`; None when `name` is not a well-formed name of this collection."""
        m = re.fullmatch(rf"{self.plural}/({self.id_pattern})", name)
        return m.group(1) if m else None

    def id_in(self, name: str) -> str:
        """The id in a name our own code formatted (a stored event, a peer's answer): a
        malformed one is a bug, not bad input, so it raises ValueError."""
        resource_id = self.id_of(name)
        if resource_id is None:
            raise ValueError(f"{name!r} is not a name of {self.plural}")
        return resource_id


VIDEOS = Collection("videos")
UPLOADS = Collection("uploads")
TRANSCODE_JOBS = Collection("transcodeJobs")
USERS = Collection("users", SUBJECT)
SERVICES = Collection("services", SUBJECT)

_TASK = re.compile(rf"transcodeJobs/({ID})/tasks/([a-z0-9][a-z0-9_-]{{0,62}})")


def is_subject(value: str) -> bool:
    return re.fullmatch(SUBJECT, value) is not None


def task(job_id: str, task_name: str) -> str:
    """The resource name of one task of a job: ``transcodeJobs/{job}/tasks/{task}``."""
    return f"{TRANSCODE_JOBS.name(job_id)}/tasks/{task_name}"


def parse_task(name: str) -> tuple[str, str] | None:
    """``transcodeJobs/{job}/tasks/{task}`` -> (job, task); None for anything else."""
    m = _TASK.fullmatch(name)
    return (m.group(1), m.group(2)) if m else None
