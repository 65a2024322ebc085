"""The metadata cache: cache-aside storage of serialized values, an optimisation, never a dependency.

- `Cache` is the async interface (bytes values). `make_cache(settings)` gives a `RedisCache`
  when `settings.redis_url` is set, else an `InProcessCache`.
- `RedisCache` never raises and never waits longer than `cache_socket_timeout_seconds`: any
  error or timeout counts as a miss / no-op and opens a `CircuitBreaker`; while it is open no
  network attempt is made at all.
- Negative caching: store `NEGATIVE` with `cache_negative_ttl_seconds` for a NOT_FOUND.
- `SingleFlight` collapses concurrent loads of one key into one (stampede protection).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from prometheus_client import Counter
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

if TYPE_CHECKING:
    from streamify.core.config import Settings

log = logging.getLogger(__name__)

NEGATIVE = b"\x00notfound"
"""Sentinel value for "this id does not exist" (negative caching)."""

NAMESPACE = "streamify:v1:"
"""Prefix of every key RedisCache writes; the recovery flush deletes exactly these keys."""

CACHE_REQUESTS = Counter(
    "streamify_cache_requests_total",
    "Cache operations. hit/miss: get only; error/skipped: any operation "
    "(skipped = not attempted because the Redis circuit breaker is open or recovering).",
    ["backend", "result"],
)

Clock = Callable[[], float]
T = TypeVar("T")


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: float) -> None: ...
    async def delete(self, *keys: str) -> None: ...
    async def close(self) -> None: ...


class InProcessCache:
    """A bounded (LRU) dict with per-entry TTL on a monotonic clock; for one process only."""

    def __init__(self, max_entries: int = 10_000, clock: Clock = time.monotonic) -> None:
        self._max = max_entries
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None or entry[0] <= self._clock():
            self._data.pop(key, None)
            CACHE_REQUESTS.labels("memory", "miss").inc()
            return None
        self._data.move_to_end(key)
        CACHE_REQUESTS.labels("memory", "hit").inc()
        return entry[1]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if ttl <= 0:
            self._data.pop(key, None)
            return
        self._data[key] = (self._clock() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)

    async def close(self) -> None:
        self._data.clear()


class BreakerState(enum.Enum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls are skipped until the cooldown has passed
    HALF_OPEN = "half_open"  # one trial call is in flight; all others are skipped


class CircuitBreaker:
    """Closed -> (failure) -> open for `cooldown` s -> half-open: exactly one trial call.

    The trial's success closes the breaker, its failure opens it for another cooldown.
    """

    def __init__(self, cooldown: float, clock: Clock = time.monotonic) -> None:
        self.cooldown = cooldown
        self._clock = clock
        self.state = BreakerState.CLOSED
        self._opened_at = 0.0

    def allow(self) -> bool:
        """May a call be made now? In half-open state only the first caller gets True."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown:
            self.state = BreakerState.HALF_OPEN
            return True
        return False

    def record_success(self) -> bool:
        """Returns True if this closed a breaker that was not closed (a recovery)."""
        was_closed = self.state is BreakerState.CLOSED
        self.state = BreakerState.CLOSED
        return not was_closed

    def record_failure(self) -> bool:
        """Opens (again) for a full cooldown. Returns True if the breaker was closed before."""
        was_closed = self.state is BreakerState.CLOSED
        self.state = BreakerState.OPEN
        self._opened_at = self._clock()
        return was_closed


class RedisCache:
    """Cache in Redis (redis.asyncio + hiredis, one bounded connection pool, no retries).

    Every operation is bounded by `socket_timeout` in total (pool wait + connect + round trip);
    any exception is logged once per outage, counted, and turned into a miss / no-op.

    Invalidation while Redis is unreachable: a failed or skipped `delete` cannot be retried
    reliably, so the entry it was meant to remove may still be in Redis when Redis comes back
    (a restart with persistence, a replica promoted, or just a network blip). Every failure
    opens the breaker, and the breaker's half-open trial is a *recovery flush*: all keys under
    NAMESPACE are removed (SCAN + UNLINK) before the breaker closes and reads are served again.
    The flush runs in a background task, so no caller waits for it; calls are skipped until it
    is done. Because the flush acts on Redis itself, other replicas also stop seeing stale
    entries from then on. What it cannot cover: a replica that keeps reading from Redis while
    only *this* process cannot reach it (a partial partition) sees the old entry until its TTL
    expires - keep `cache_ttl_seconds` short as the backstop.
    """

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        socket_timeout: float,
        cooldown: float,
        max_connections: int = 64,
        clock: Clock = time.monotonic,
    ) -> None:
        self._timeout = socket_timeout
        self.breaker = CircuitBreaker(cooldown, clock)
        self._pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=socket_timeout,  # waiting for a free pooled connection
            socket_connect_timeout=socket_timeout,
            socket_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),  # fail fast: the breaker decides when to try again
        )
        self._redis = Redis(connection_pool=self._pool)
        self._recovery: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisCache:
        if not settings.redis_url:
            raise ValueError("RedisCache needs settings.redis_url")
        return cls(
            settings.redis_url,
            socket_timeout=settings.cache.socket_timeout_seconds,
            cooldown=settings.cache.breaker_cooldown_seconds,
        )

    # -- the guard around every Redis call -------------------------------------------------

    def _admit(self) -> bool:
        """True if this call may use Redis now; else it is skipped (counted)."""
        if self.breaker.allow():
            if self.breaker.state is BreakerState.CLOSED:
                return True
            # We are the half-open trial: recover in the background, skip this call.
            self._recovery = asyncio.create_task(self._recover())
        CACHE_REQUESTS.labels(self.backend, "skipped").inc()
        return False

    def _failed(self, op: str, exc: BaseException) -> None:
        CACHE_REQUESTS.labels(self.backend, "error").inc()
        if self.breaker.record_failure():
            log.warning(
                "redis cache unavailable (%s: %r); skipping it, next try in %.1fs",
                op,
                exc,
                self.breaker.cooldown,
            )
        else:
            log.debug("redis cache still unavailable (%s: %r)", op, exc)

    async def _recover(self) -> None:
        try:
            await self._pool.disconnect()  # drop sockets to the old server: no network I/O
            flushed = 0
            async with asyncio.timeout(max(10 * self._timeout, 5.0)):
                async for batch in self._scan_batches():
                    flushed += await self._redis.unlink(*batch)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the breaker open
            self._failed("recovery flush", exc)
            return
        self.breaker.record_success()
        log.info("redis cache recovered; flushed %d keys of %s*", flushed, NAMESPACE)

    async def _scan_batches(self, count: int = 500) -> AsyncIterator[list[bytes | str]]:
        cursor = 0
        while True:
            cursor, keys = await self._redis.scan(cursor, match=f"{NAMESPACE}*", count=count)
            if keys:
                yield keys
            if cursor == 0:
                return

    async def wait_recovery(self) -> None:
        """Wait for a running recovery flush (tests and shutdown)."""
        if self._recovery is not None:
            await asyncio.shield(self._recovery)

    # -- the Cache interface ------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        if not self._admit():
            return None
        try:
            async with asyncio.timeout(self._timeout):
                # The client decodes nothing (no decode_responses), so GET replies bytes; redis-py
                # types it for both modes.
                value = cast("bytes | None", await self._redis.get(NAMESPACE + key))
        except Exception as exc:  # noqa: BLE001 - the cache must never fail the caller
            self._failed("get", exc)
            return None
        CACHE_REQUESTS.labels(self.backend, "miss" if value is None else "hit").inc()
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if ttl <= 0 or not self._admit():
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.set(NAMESPACE + key, value, px=max(1, round(ttl * 1000)))
        except Exception as exc:  # noqa: BLE001
            self._failed("set", exc)

    async def delete(self, *keys: str) -> None:
        # A skipped or failed delete is made good by the recovery flush (see class docstring).
        if not keys or not self._admit():
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.unlink(*(NAMESPACE + k for k in keys))
        except Exception as exc:  # noqa: BLE001
            self._failed("delete", exc)

    async def close(self) -> None:
        if self._recovery is not None and not self._recovery.done():
            self._recovery.cancel()
        await self._redis.aclose()
        await self._pool.disconnect()


def make_cache(settings: Settings) -> Cache:
    """RedisCache when settings.redis_url is set, else an InProcessCache."""
    if settings.redis_url:
        return RedisCache.from_settings(settings)
    return InProcessCache()


class SingleFlight:
    """Concurrent `do(key, factory)` calls for the same key share one in-flight load.

    The load runs as its own task: a caller that is cancelled does not cancel it for the
    others. Its result or exception goes to every caller that joined; the next call after it
    finished starts a new load.
    """

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    async def do(self, key: str, factory: Callable[[], Awaitable[T]]) -> T:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(factory())
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._forget(key, t))
        result: T = await asyncio.shield(task)
        return result

    def forget(self, key: str) -> None:
        """Detach the in-flight load of `key` (call after invalidating it): callers already
        waiting still get its result, later callers start a new load instead of joining one
        that may have read the data before the write."""
        self._inflight.pop(key, None)

    def _forget(self, key: str, task: asyncio.Future[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
