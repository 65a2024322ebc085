"""Consumes "video uploaded" events from the durable queue and creates the jobs.

At least once: a job is created (idempotent by video id) before the message is acked, so a
crash in between only makes the next delivery find the job already there. A message that
cannot be parsed, or whose job cannot be created, is released with a backoff; the queue
dead-letters it after queue_max_deliveries deliveries.
"""

from __future__ import annotations

import asyncio
import logging

from google.protobuf.message import DecodeError

from streamify.core import names
from streamify.core.queue import Delivery, JobQueue
from streamify.transcode.orchestrator.job_control import JobControl
from streamify.v1.events_pb2 import VideoUploadedEvent

log = logging.getLogger(__name__)
MAX_BACKOFF = 60.0


class UploadedConsumer:
    def __init__(self, queue: JobQueue, orchestrator: JobControl) -> None:
        self._queue = queue
        self._orch = orchestrator

    async def run(self) -> None:
        while True:
            try:
                deliveries = await self._queue.receive(max_messages=10, wait_seconds=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("receiving from the job queue failed")
                await asyncio.sleep(1.0)
                continue
            for delivery in deliveries:
                await self.handle(delivery)

    async def handle(self, delivery: Delivery) -> None:
        try:
            event = VideoUploadedEvent.FromString(delivery.body)
            video_id = names.VIDEOS.id_of(event.video)
            if video_id is None or not event.bucket or not event.key:
                raise ValueError(f"not a usable VideoUploadedEvent: {event}")
        except (DecodeError, ValueError) as exc:
            log.error(
                "poison message %s (delivery %s): %s", delivery.message_id, delivery.attempt, exc
            )
            await self._queue.release(delivery, delay_seconds=self._backoff(delivery))
            return
        try:
            await self._orch.create_job(
                video_id, event.owner, event.bucket, event.key, event.size_bytes
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("creating the job for %s failed; it will be delivered again", event.video)
            await self._queue.release(delivery, delay_seconds=self._backoff(delivery))
            return
        await self._queue.ack(delivery)

    @staticmethod
    def _backoff(delivery: Delivery) -> float:
        return min(MAX_BACKOFF, 2.0 ** max(0, delivery.attempt - 1))
