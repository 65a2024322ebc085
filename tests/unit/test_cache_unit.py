"""InProcessCache, CircuitBreaker, SingleFlight, make_cache: no I/O, a fake clock, no sleeping."""

from __future__ import annotations

import asyncio

import pytest

from streamify.core.cache import (
    NEGATIVE,
    BreakerState,
    CircuitBreaker,
    InProcessCache,
    RedisCache,
    SingleFlight,
    make_cache,
)
from streamify.core.config import Settings

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --------------------------------------------------------------------------- InProcessCache


async def test_in_process_set_get_delete() -> None:
    cache = InProcessCache(clock=FakeClock())
    assert await cache.get("a") is None
    await cache.set("a", b"1", ttl=10)
    await cache.set("b", NEGATIVE, ttl=2)
    assert await cache.get("a") == b"1"
    assert await cache.get("b") == NEGATIVE
    await cache.delete("a", "b", "never-set")
    assert await cache.get("a") is None and await cache.get("b") is None


async def test_in_process_ttl_expiry() -> None:
    clock = FakeClock()
    cache = InProcessCache(clock=clock)
    await cache.set("a", b"1", ttl=10)
    clock.advance(9.999)
    assert await cache.get("a") == b"1"
    clock.advance(0.001)
    assert await cache.get("a") is None
    assert len(cache) == 0  # an expired entry is dropped on read


async def test_in_process_zero_ttl_stores_nothing() -> None:
    cache = InProcessCache(clock=FakeClock())
    await cache.set("a", b"1", ttl=10)
    await cache.set("a", b"2", ttl=0)  # e.g. cache_negative_ttl_seconds=0: caching disabled
    assert await cache.get("a") is None


async def test_in_process_is_bounded_lru() -> None:
    cache = InProcessCache(max_entries=3, clock=FakeClock())
    for key in "abc":
        await cache.set(key, key.encode(), ttl=60)
    assert await cache.get("a") == b"a"  # "a" is now the most recently used
    await cache.set("d", b"d", ttl=60)  # evicts the least recently used: "b"
    assert len(cache) == 3
    assert await cache.get("b") is None
    assert [await cache.get(k) for k in "acd"] == [b"a", b"c", b"d"]


# --------------------------------------------------------------------------- CircuitBreaker


def test_breaker_closed_allows_everything() -> None:
    breaker = CircuitBreaker(cooldown=2.0, clock=FakeClock())
    assert all(breaker.allow() for _ in range(5))
    assert breaker.record_success() is False  # success while closed is no recovery


def test_breaker_opens_on_failure_and_skips_until_cooldown() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(cooldown=2.0, clock=clock)
    assert breaker.record_failure() is True  # first failure opens it: log this one
    assert breaker.record_failure() is False  # already open: do not log again
    assert breaker.state is BreakerState.OPEN
    clock.advance(1.999)
    assert not breaker.allow()


def test_breaker_half_open_allows_exactly_one_trial() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(cooldown=2.0, clock=clock)
    breaker.record_failure()
    clock.advance(2.0)
    assert breaker.allow() is True
    assert breaker.state is BreakerState.HALF_OPEN
    assert [breaker.allow() for _ in range(3)] == [False, False, False]
    assert breaker.record_success() is True  # the trial succeeded: recovered
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_breaker_failed_trial_reopens_for_a_full_cooldown() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(cooldown=2.0, clock=clock)
    breaker.record_failure()
    clock.advance(5.0)
    assert breaker.allow()
    assert breaker.record_failure() is False  # not a new outage: not logged again
    assert breaker.state is BreakerState.OPEN
    clock.advance(1.0)
    assert not breaker.allow()
    clock.advance(1.0)
    assert breaker.allow()


# ------------------------------------------------------------------------------ SingleFlight


async def test_single_flight_collapses_concurrent_loads() -> None:
    sf = SingleFlight()
    release = asyncio.Event()
    calls = 0

    async def load() -> bytes:
        nonlocal calls
        calls += 1
        await release.wait()
        return b"value"

    waiters = [asyncio.create_task(sf.do("video:1", load)) for _ in range(50)]
    await asyncio.sleep(0)  # let every waiter join the flight
    release.set()
    assert await asyncio.gather(*waiters) == [b"value"] * 50
    assert calls == 1
    # The flight is over: the next call loads again.
    assert await sf.do("video:1", load) == b"value"
    assert calls == 2


async def test_single_flight_keys_are_independent() -> None:
    sf = SingleFlight()
    loaded: list[str] = []

    async def load(key: str) -> str:
        loaded.append(key)
        await asyncio.sleep(0)
        return key.upper()

    results = await asyncio.gather(*(sf.do(k, lambda k=k: load(k)) for k in ["a", "b", "a"]))
    assert results == ["A", "B", "A"]
    assert sorted(loaded) == ["a", "b"]


async def test_single_flight_shares_the_exception_and_then_retries() -> None:
    sf = SingleFlight()
    release = asyncio.Event()

    async def failing() -> bytes:
        await release.wait()
        raise LookupError("db down")

    waiters = [asyncio.create_task(sf.do("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)

    async def ok() -> bytes:
        return b"v"

    assert await sf.do("k", ok) == b"v"


async def test_single_flight_cancelled_caller_does_not_cancel_the_load() -> None:
    sf = SingleFlight()
    release = asyncio.Event()

    async def load() -> bytes:
        await release.wait()
        return b"v"

    first = asyncio.create_task(sf.do("k", load))
    second = asyncio.create_task(sf.do("k", load))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    release.set()
    assert await second == b"v"
    assert first.cancelled()


async def test_single_flight_forget_starts_a_new_load_for_later_callers() -> None:
    sf = SingleFlight()
    release = asyncio.Event()
    versions = iter([b"before-write", b"after-write"])

    async def load() -> bytes:
        value = next(versions)
        await release.wait()
        return value

    early = asyncio.create_task(sf.do("k", load))
    await asyncio.sleep(0)
    sf.forget("k")  # a write committed and invalidated "k" while the first load ran
    late = asyncio.create_task(sf.do("k", load))
    await asyncio.sleep(0)
    release.set()
    assert (await early, await late) == (b"before-write", b"after-write")


# -------------------------------------------------------------------------------- make_cache


async def test_make_cache_chooses_the_backend() -> None:
    assert isinstance(make_cache(Settings(redis_url=None)), InProcessCache)
    # Constructing a RedisCache opens no connection (redis-py connects lazily).
    cache = make_cache(
        Settings(redis_url="redis://127.0.0.1:1/0", cache_socket_timeout_seconds=0.5)
    )
    assert isinstance(cache, RedisCache)
    await cache.close()
