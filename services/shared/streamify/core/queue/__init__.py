"""The durable job queue (port) and its adapters: a database table, Redis Streams, AWS SQS.

At-least-once: a received job is leased for the visibility timeout; a consumer that dies
without acking loses the lease and the job is delivered again (attempt + 1). After
queue_max_deliveries deliveries a job is dead-lettered (kept, visible) instead of retried.
Consumers must therefore be idempotent, keyed by the job's `key` (e.g. the video id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from streamify.core.config import Settings

DEFAULT_QUEUE = "jobs"


@dataclass(frozen=True)
class Delivery:
    message_id: str
    key: str
    body: bytes
    attempt: int  # 1 on first delivery
    receipt: str  # identifies this lease; ack/release/extend need it


class LeaseLost(Exception):
    """extend() found the lease gone: the job was acked, or re-delivered to another consumer
    after the visibility timeout. The consumer should stop working on it."""


class JobQueue(Protocol):
    async def publish(self, key: str, body: bytes) -> None:
        """Durably enqueue a job once this returns (at-least-once)."""

    async def receive(self, max_messages: int = 1, wait_seconds: float = 1.0) -> list[Delivery]:
        """Up to max_messages jobs, each leased for the visibility timeout; waits up to
        wait_seconds for the first one."""

    async def ack(self, delivery: Delivery) -> None:
        """The job is done: remove it."""

    async def release(self, delivery: Delivery, delay_seconds: float = 0) -> None:
        """Give the job back, to be delivered again after delay_seconds (counts as a delivery)."""

    async def extend(self, delivery: Delivery, seconds: float) -> None:
        """Keep the lease for `seconds` from now (heartbeat of a long job); raises LeaseLost."""

    async def dead_letters(self, limit: int = 100) -> list[Delivery]:
        """Jobs that ran out of deliveries, for operators and tests (attempt = deliveries)."""

    async def close(self) -> None: ...


def make_queue(settings: Settings, name: str = DEFAULT_QUEUE) -> JobQueue:
    """The adapter settings.queue.backend names. `name` tells queues apart in a shared table or
    Redis; an SQS queue is named by settings.queue.url instead."""
    if settings.queue.backend == "database":
        from streamify.core.queue.database import DatabaseQueue

        return DatabaseQueue.from_settings(settings, name)
    if settings.queue.backend == "redis":
        from streamify.core.queue.redis_streams import RedisStreamsQueue

        return RedisStreamsQueue.from_settings(settings, name)
    if settings.queue.backend == "sqs":
        from streamify.core.queue.sqs import SqsQueue

        return SqsQueue.from_settings(settings)
    raise ValueError(f"unknown queue backend {settings.queue.backend!r}")


__all__ = ["DEFAULT_QUEUE", "Delivery", "JobQueue", "LeaseLost", "make_queue"]
