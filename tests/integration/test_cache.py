"""RedisCache against a real redis-server: basics, stampede protection, and Redis going away."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from streamify.core.cache import NAMESPACE, NEGATIVE, BreakerState, RedisCache, SingleFlight
from streamify.core.config import Settings
from tests.support.servers import ExternalRedis, RedisServer

pytestmark = pytest.mark.integration

# Generous on purpose: these tests must not flake on a busy machine. The production default
# (50 ms) is a bound, not something a test should measure.
TIMEOUT = 1.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def counted(result: str) -> float:
    value = REGISTRY.get_sample_value(
        "streamify_cache_requests_total", {"backend": "redis", "result": result}
    )
    return value or 0.0


@pytest.fixture
async def cache(redis_server: RedisServer | ExternalRedis) -> AsyncIterator[RedisCache]:
    settings = Settings(redis_url=redis_server.url, cache_socket_timeout_seconds=TIMEOUT)
    cache = RedisCache.from_settings(settings)
    yield cache
    await cache.close()


@pytest.fixture
async def raw(redis_server: RedisServer | ExternalRedis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


def unique(name: str) -> str:
    return f"test:{uuid.uuid4().hex[:8]}:{name}"


async def test_set_get_delete(cache: RedisCache, raw: aioredis.Redis) -> None:
    key, other = unique("video"), unique("other")
    assert await cache.get(key) is None
    await cache.set(key, b"\x08\x01payload", ttl=60)
    await cache.set(other, NEGATIVE, ttl=2)
    assert await cache.get(key) == b"\x08\x01payload"
    assert await cache.get(other) == NEGATIVE
    assert await raw.get(NAMESPACE + key) == b"\x08\x01payload"  # namespaced in Redis
    await cache.delete(key, other)
    assert await cache.get(key) is None and await cache.get(other) is None
    assert cache.breaker.state is BreakerState.CLOSED


async def test_ttl_is_set_and_entries_expire(cache: RedisCache, raw: aioredis.Redis) -> None:
    long, short = unique("long"), unique("short")
    await cache.set(long, b"v", ttl=30)
    assert 0 < await raw.pttl(NAMESPACE + long) <= 30_000
    await cache.set(short, b"v", ttl=0.05)
    for _ in range(200):  # Redis expires it on its own clock; poll, do not assert a duration
        if await cache.get(short) is None:
            break
        await asyncio.sleep(0.01)
    assert await cache.get(short) is None
    assert await raw.exists(NAMESPACE + short) == 0


async def test_hits_and_misses_are_counted(cache: RedisCache) -> None:
    key = unique("counted")
    hits, misses = counted("hit"), counted("miss")
    await cache.get(key)
    await cache.set(key, b"v", ttl=60)
    await cache.get(key)
    assert (counted("hit") - hits, counted("miss") - misses) == (1, 1)


async def test_single_flight_loads_a_hot_key_once(cache: RedisCache) -> None:
    key, sf, callers = unique("hot"), SingleFlight(), 50
    loads = 0
    missed = 0
    all_missed = asyncio.Event()

    async def load() -> bytes:
        nonlocal loads
        loads += 1
        await all_missed.wait()  # keep the flight open until every caller has missed
        value = b"from-db"
        await cache.set(key, value, ttl=60)
        return value

    async def read_through() -> bytes:
        nonlocal missed
        if (value := await cache.get(key)) is not None:
            return value
        missed += 1
        if missed == callers:
            all_missed.set()
        return await sf.do(key, load)

    results = await asyncio.gather(*(read_through() for _ in range(callers)))
    assert results == [b"from-db"] * callers
    assert loads == 1
    assert await cache.get(key) == b"from-db"


class PortListener:
    """Listens on a port and counts the TCP connections made to it (accepted by the kernel)."""

    def __init__(self, port: int) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(64)
        self._sock.setblocking(False)

    def connections(self) -> int:
        n = 0
        while True:
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError:
                return n
            conn.close()
            n += 1

    def close(self) -> None:
        self._sock.close()


async def test_redis_down_then_back_no_stale_reads(private_redis: RedisServer) -> None:
    clock = FakeClock()
    cache = RedisCache(private_redis.url, socket_timeout=TIMEOUT, cooldown=2.0, clock=clock)
    raw = aioredis.Redis.from_url(private_redis.url)
    try:
        await cache.set("video:1", b"old", ttl=60)
        await cache.set("video:2", b"two", ttl=60)
        assert await cache.get("video:1") == b"old"

        private_redis.stop()
        errors = counted("error")
        assert await cache.get("video:1") is None  # the failure is a miss for the caller
        assert cache.breaker.state is BreakerState.OPEN
        assert counted("error") == errors + 1

        # While the breaker is open nothing touches the network: something listening on
        # Redis's port sees no connection at all, and every call is counted as skipped.
        listener = PortListener(private_redis.port)
        try:
            skipped = counted("skipped")
            assert await cache.get("video:2") is None
            await cache.set("video:3", b"x", ttl=60)
            await cache.delete("video:1")  # the invalidation that cannot reach Redis
            assert listener.connections() == 0
            assert counted("skipped") == skipped + 3
            assert counted("error") == errors + 1
        finally:
            listener.close()

        private_redis.start()  # persistent: comes back WITH the entry we failed to delete
        assert await raw.get(NAMESPACE + "video:1") == b"old"
        assert await cache.get("video:1") is None  # still cooling down: skipped
        assert cache.breaker.state is BreakerState.OPEN

        clock.advance(2.0)
        assert await cache.get("video:1") is None  # the half-open trial: starts the recovery
        await cache.wait_recovery()
        assert cache.breaker.state is BreakerState.CLOSED
        assert await cache.get("video:1") is None  # NOT the stale b"old"
        assert await raw.keys(NAMESPACE + "*") == []  # the namespace was flushed
        await cache.set("video:1", b"new", ttl=60)
        assert await cache.get("video:1") == b"new"
    finally:
        await raw.aclose()
        await cache.close()


async def test_hung_redis_times_out_into_a_miss(private_redis: RedisServer) -> None:
    """A Redis that accepts but never answers: the socket timeout turns it into a miss."""
    cache = RedisCache(private_redis.url, socket_timeout=0.2, cooldown=60.0)
    try:
        await cache.set("video:1", b"v", ttl=60)
        assert await cache.get("video:1") == b"v"
        assert private_redis.pid is not None
        os.kill(private_redis.pid, signal.SIGSTOP)
        try:
            assert await cache.get("video:1") is None
            await cache.delete("video:1")  # skipped, does not raise
            assert cache.breaker.state is BreakerState.OPEN
        finally:
            os.kill(private_redis.pid, signal.SIGCONT)
    finally:
        await cache.close()
