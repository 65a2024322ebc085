"""The job queue on AWS SQS (standard queue) with a dead-letter queue through a RedrivePolicy.

SQS does the leasing itself (visibility timeout, ApproximateReceiveCount = attempt) and moves
a message to the dead-letter queue once it has been received maxReceiveCount times. Bodies are
base64 text (SQS bodies must be XML-safe Unicode); the key travels as a message attribute.
boto3 is synchronous: every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError

from streamify.core.config import Settings
from streamify.core.errors import ConfigurationError
from streamify.core.queue import DEFAULT_QUEUE, Delivery, LeaseLost

_MAX_BATCH = 10  # SQS limit per ReceiveMessage
_MAX_WAIT = 20  # SQS limit for long polling, seconds
_LOST = {
    "ReceiptHandleIsInvalid",
    "InvalidParameterValue",
    "MessageNotInflight",
    "AWS.SimpleQueueService.MessageNotInflight",
}


def sqs_client(settings: Settings) -> Any:
    return boto3.client(
        "sqs", endpoint_url=settings.sqs_endpoint_url, region_name=settings.s3.region
    )


def ensure_sqs_queues(settings: Settings, name: str | None = None) -> str:
    """Create the queue and its dead-letter queue `<name>-dlq` (idempotent) and return the
    queue URL. For local stand-ins and first-time setup; on AWS they are usually provisioned
    by infrastructure code with the same attributes."""
    if name is None:
        name = _name_of(settings.queue.url) if settings.queue.url else f"streamify-{DEFAULT_QUEUE}"
    sqs = sqs_client(settings)
    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {
        "VisibilityTimeout": str(math.ceil(settings.queue.visibility_timeout_seconds)),
        "MessageRetentionPeriod": "1209600",
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(settings.queue.max_deliveries)}
        ),
    }
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def _name_of(queue_url: str) -> str:
    return urlsplit(queue_url).path.rstrip("/").rsplit("/", 1)[-1]


class SqsQueue:
    def __init__(self, client: Any, queue_url: str, visibility_timeout: float) -> None:
        self._sqs = client
        self._url = queue_url
        self._visibility = max(0, math.ceil(visibility_timeout))
        self._dlq_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SqsQueue:
        if not settings.queue.url:
            raise ConfigurationError(
                "queue_backend=sqs needs STREAMIFY_QUEUE_URL (the SQS queue URL)"
            )
        return cls(
            sqs_client(settings), settings.queue.url, settings.queue.visibility_timeout_seconds
        )

    async def publish(self, key: str, body: bytes) -> None:
        await asyncio.to_thread(
            self._sqs.send_message,
            QueueUrl=self._url,
            MessageBody=base64.b64encode(body).decode(),
            MessageAttributes={"key": {"DataType": "String", "StringValue": key}},
        )

    async def receive(self, max_messages: int = 1, wait_seconds: float = 1.0) -> list[Delivery]:
        return await asyncio.to_thread(
            self._receive, self._url, max_messages, wait_seconds, self._visibility
        )

    def _receive(self, url: str, limit: int, wait: float, visibility: int) -> list[Delivery]:
        reply = self._sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=max(1, min(limit, _MAX_BATCH)),
            WaitTimeSeconds=min(_MAX_WAIT, math.ceil(wait)),
            VisibilityTimeout=visibility,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["key"],
        )
        return [
            Delivery(
                message_id=m["MessageId"],
                key=m.get("MessageAttributes", {}).get("key", {}).get("StringValue", ""),
                body=base64.b64decode(m["Body"]),
                attempt=int(m["Attributes"]["ApproximateReceiveCount"]),
                receipt=m["ReceiptHandle"],
            )
            for m in reply.get("Messages", [])
        ]

    async def ack(self, delivery: Delivery) -> None:
        await asyncio.to_thread(
            self._sqs.delete_message, QueueUrl=self._url, ReceiptHandle=delivery.receipt
        )

    async def release(self, delivery: Delivery, delay_seconds: float = 0) -> None:
        with contextlib.suppress(LeaseLost):  # someone else holds it now: nothing to give back
            await self._change_visibility(delivery, delay_seconds)

    async def extend(self, delivery: Delivery, seconds: float) -> None:
        await self._change_visibility(delivery, seconds)

    async def _change_visibility(self, delivery: Delivery, seconds: float) -> None:
        try:
            await asyncio.to_thread(
                self._sqs.change_message_visibility,
                QueueUrl=self._url,
                ReceiptHandle=delivery.receipt,
                VisibilityTimeout=max(0, min(43200, math.ceil(seconds))),
            )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in _LOST:
                raise LeaseLost(f"job {delivery.message_id}: {e}") from e
            raise

    async def dead_letters(self, limit: int = 100) -> list[Delivery]:
        """Peeks at the dead-letter queue (visibility 0, so the messages stay there). `attempt`
        is SQS's ApproximateReceiveCount as it reports it there (each peek adds one)."""
        url = await asyncio.to_thread(self._dead_letter_url)
        seen: dict[str, Delivery] = {}
        for _ in range(max(1, math.ceil(limit / _MAX_BATCH))):
            batch = await asyncio.to_thread(self._receive, url, min(_MAX_BATCH, limit), 0, 0)
            fresh = [d for d in batch if d.message_id not in seen]
            if not fresh:
                break
            seen.update((d.message_id, d) for d in fresh)
        return list(seen.values())[:limit]

    def _dead_letter_url(self) -> str:
        if self._dlq_url is None:
            attrs = self._sqs.get_queue_attributes(
                QueueUrl=self._url, AttributeNames=["RedrivePolicy"]
            )
            policy = attrs.get("Attributes", {}).get("RedrivePolicy")
            if not policy:
                raise ConfigurationError(
                    f"SQS queue {self._url} has no RedrivePolicy (dead-letter queue)"
                )
            arn = json.loads(policy)["deadLetterTargetArn"]
            self._dlq_url = self._sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        return self._dlq_url

    async def close(self) -> None:
        await asyncio.to_thread(self._sqs.close)
