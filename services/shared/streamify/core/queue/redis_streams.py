"""The job queue on Redis Streams: one stream, one consumer group, a dead-letter stream.

A job is a stream entry; receiving first takes over entries whose consumer has been silent
longer than the visibility timeout (XAUTOCLAIM, which counts a delivery), then reads new ones
(XREADGROUP). The group's pending list holds the lease: its idle time is the lease age and its
delivery count the attempt. Durability is Redis's: use AOF persistence (appendfsync everysec
or always) or ElastiCache with Multi-AZ, or an acked publish can be lost with the node.
"""

from __future__ import annotations

import math
import uuid
from typing import cast

import redis.asyncio as redis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from streamify.core.config import Settings
from streamify.core.errors import ConfigurationError
from streamify.core.queue import Delivery, LeaseLost

GROUP = "workers"

# Re-times the lease of an entry still pending for this consumer at this attempt: XCLAIM with
# IDLE sets the lease age, JUSTID keeps the delivery count. Atomic, so an entry another
# consumer has claimed meanwhile is left alone.
_RETIME = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] or p[1][4] ~= tonumber(ARGV[4]) then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[5], 'JUSTID')
return 1
"""

# The client is made without decode_responses and speaks RESP2, so an entry's id and fields are
# bytes. redis-py types replies for every protocol and decoding mode at once (str or bytes, RESP3
# dicts): these are the shapes this client actually gets, which the casts below name.
_Fields = dict[bytes, bytes]
_Entry = tuple[bytes, _Fields]


class RedisStreamsQueue:
    def __init__(
        self, client: redis.Redis, name: str, visibility_timeout: float, max_deliveries: int
    ) -> None:
        self._redis = client
        self.stream = f"streamify:queue:{name}"
        self.dead_stream = f"{self.stream}:dead"
        self._consumer = f"c-{uuid.uuid4().hex[:12]}"
        self._visibility_ms = max(1, math.ceil(visibility_timeout * 1000))
        self._max_deliveries = max_deliveries
        self._group_ready = False
        self._claim_cursor = "0-0"
        self._retime = client.register_script(_RETIME)

    @classmethod
    def from_settings(cls, settings: Settings, name: str) -> RedisStreamsQueue:
        url = settings.queue.url or settings.redis_url
        if not url:
            raise ConfigurationError(
                "queue_backend=redis needs STREAMIFY_QUEUE_URL (a redis:// URL)"
            )
        client = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
        return cls(
            client, name, settings.queue.visibility_timeout_seconds, settings.queue.max_deliveries
        )

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:  # from id 0: entries published before any consumer existed are delivered too
            await self._redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._group_ready = True

    async def publish(self, key: str, body: bytes) -> None:
        await self._redis.xadd(self.stream, {"key": key, "body": body})

    async def receive(self, max_messages: int = 1, wait_seconds: float = 1.0) -> list[Delivery]:
        await self._ensure_group()
        try:
            got = await self._claim_stalled(max_messages)
            if len(got) < max_messages:
                got += await self._read_new(max_messages - len(got), wait_seconds if not got else 0)
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            self._group_ready = False  # the stream was deleted: recreate on the next call
            return []
        return got

    async def _claim_stalled(self, count: int) -> list[Delivery]:
        reply = await self._redis.xautoclaim(
            self.stream,
            GROUP,
            self._consumer,
            self._visibility_ms,
            start_id=self._claim_cursor,
            count=count,
        )
        self._claim_cursor, entries = reply[0], reply[1]
        if not entries:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id, _ in entries:
                pipe.xpending_range(self.stream, GROUP, min=entry_id, max=entry_id, count=1)
            replies = await pipe.execute()
        counts = {p["message_id"]: p["times_delivered"] for reply in replies for p in reply}
        got = []
        for entry_id, fields in entries:
            if fields is None:  # deleted while pending (trimmed): nothing to deliver
                await self._redis.xack(self.stream, GROUP, entry_id)
                continue
            attempt = counts.get(entry_id, self._max_deliveries + 1)
            if attempt > self._max_deliveries:
                await self._dead_letter(entry_id, fields, attempt - 1)
            else:
                got.append(self._delivery(entry_id, fields, attempt))
        return got

    async def _read_new(self, count: int, wait_seconds: float) -> list[Delivery]:
        block = max(1, int(wait_seconds * 1000)) if wait_seconds > 0 else None
        reply = await self._redis.xreadgroup(
            GROUP, self._consumer, {self.stream: ">"}, count=count, block=block
        )
        return [
            self._delivery(entry_id, fields, 1)
            for _stream, entries in cast("list[tuple[bytes, list[_Entry]]]", reply or [])
            for entry_id, fields in entries
        ]

    async def _dead_letter(self, entry_id: bytes, fields: _Fields, deliveries: int) -> None:
        # The entry's own fields, then where it came from (built up: a dict is invariant in its
        # key type, so dict[bytes, bytes] does not unpack into xadd's dict[FieldT, EncodableT]).
        dead: dict[FieldT, EncodableT] = {name: value for name, value in fields.items()}
        dead["message_id"] = entry_id
        dead["deliveries"] = deliveries
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_stream, dead)
            pipe.xack(self.stream, GROUP, entry_id)
            pipe.xdel(self.stream, entry_id)
            await pipe.execute()

    def _delivery(self, entry_id: bytes, fields: _Fields, attempt: int) -> Delivery:
        return Delivery(
            message_id=entry_id.decode(),
            key=fields[b"key"].decode(),
            body=fields[b"body"],
            attempt=attempt,
            receipt=f"{self._consumer}/{attempt}",
        )

    async def ack(self, delivery: Delivery) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, GROUP, delivery.message_id)
            pipe.xdel(self.stream, delivery.message_id)
            await pipe.execute()

    async def release(self, delivery: Delivery, delay_seconds: float = 0) -> None:
        # A lease this old becomes claimable after delay_seconds (at most one visibility timeout).
        await self._set_lease_age(delivery, self._visibility_ms - int(delay_seconds * 1000))

    async def extend(self, delivery: Delivery, seconds: float) -> None:
        # Redis keeps only the lease's age, so a lease can reach at most one visibility timeout
        # ahead: heartbeat more often than that.
        if not await self._set_lease_age(delivery, self._visibility_ms - int(seconds * 1000)):
            raise LeaseLost(f"job {delivery.message_id} is no longer leased by this consumer")

    async def _set_lease_age(self, delivery: Delivery, age_ms: int) -> bool:
        consumer, attempt = delivery.receipt.rsplit("/", 1)
        age = min(max(0, age_ms), self._visibility_ms)
        args: list[str | int] = [GROUP, consumer, delivery.message_id, attempt, age]
        return bool(await self._retime(keys=[self.stream], args=args))

    async def dead_letters(self, limit: int = 100) -> list[Delivery]:
        entries = await self._redis.xrange(self.dead_stream, count=limit)
        return [
            Delivery(
                message_id=fields[b"message_id"].decode(),
                key=fields[b"key"].decode(),
                body=fields[b"body"],
                attempt=int(fields[b"deliveries"]),
                receipt="",
            )
            for _id, fields in cast("list[_Entry]", entries)
        ]

    async def close(self) -> None:
        try:  # drop this consumer's name from the group unless it still holds leases
            if self._group_ready and not await self._redis.xpending_range(
                self.stream, GROUP, min="-", max="+", count=1, consumername=self._consumer
            ):
                await self._redis.xgroup_delconsumer(self.stream, GROUP, self._consumer)
        finally:
            await self._redis.aclose()
