"""The durable job queue, the same contract on every backend: a table in SQLite and in a real
PostgreSQL, Redis Streams on a real redis-server, and SQS on moto's server (a stand-in)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from streamify.core.config import Settings
from streamify.core.db import make_engine
from streamify.core.queue import Delivery, JobQueue, LeaseLost, make_queue
from streamify.core.queue.database import DatabaseQueue, messages
from streamify.core.queue.sqs import ensure_sqs_queues

pytestmark = pytest.mark.integration

BACKENDS = ["sqlite", "postgresql", "redis", "sqs"]
MakeQueue = Callable[..., JobQueue]


@pytest.fixture(scope="module")
def pg_url(postgres_server) -> str:
    return postgres_server.new_database()


@pytest.fixture(params=BACKENDS)
async def make(request, tmp_path, monkeypatch) -> AsyncIterator[MakeQueue]:
    """make(visibility=1.0, max_deliveries=5) -> a JobQueue on this test's own queue; every
    call is another consumer (own connection) of the same queue."""
    backend, name = request.param, f"q-{uuid.uuid4().hex[:10]}"
    base: dict[str, object] = {}
    if backend == "sqlite":
        base = {"queue_backend": "database", "database_url": f"sqlite:///{tmp_path / 'queue.db'}"}
    elif backend == "postgresql":
        base = {"queue_backend": "database", "database_url": request.getfixturevalue("pg_url")}
    elif backend == "redis":
        base = {"queue_backend": "redis", "queue_url": request.getfixturevalue("redis_server").url}
    else:
        sqs = request.getfixturevalue("sqs_server")
        for var, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }.items():
            monkeypatch.setenv(var, value)
        base = {"queue_backend": "sqs", "sqs_endpoint_url": sqs.endpoint_url}
    created: list[JobQueue] = []

    def factory(visibility: float = 1.0, max_deliveries: int = 5) -> JobQueue:
        settings = Settings(
            **base,
            queue_visibility_timeout_seconds=visibility,
            queue_max_deliveries=max_deliveries,
        )
        if backend == "sqs" and "queue_url" not in base:
            base["queue_url"] = ensure_sqs_queues(settings, name)
            settings = settings.model_copy(update={"queue_url": base["queue_url"]})
        queue = make_queue(settings, name)
        created.append(queue)
        return queue

    factory.backend = backend  # type: ignore[attr-defined]
    yield factory
    for queue in created:
        await queue.close()


async def receive_n(queue: JobQueue, n: int, timeout: float = 5.0) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += await queue.receive(max_messages=n - len(got), wait_seconds=1)
    return got


async def test_publish_receive_ack(make):
    queue = make(visibility=1)
    for i in range(3):
        await queue.publish(f"video-{i}", f"body {i}".encode() + b"\x00\xff")
    got = await receive_n(queue, 3)
    assert sorted((d.key, d.body, d.attempt) for d in got) == [
        (f"video-{i}", f"body {i}".encode() + b"\x00\xff", 1) for i in range(3)
    ]
    for delivery in got:
        await queue.ack(delivery)
    await asyncio.sleep(1.3)  # past the visibility timeout: acked jobs never come back
    assert await queue.receive(max_messages=10, wait_seconds=1) == []


async def test_receive_waits_and_returns_empty(make):
    queue = make()
    started = time.monotonic()
    assert await queue.receive(wait_seconds=1) == []
    assert time.monotonic() - started >= 0.9


async def test_consumer_that_dies_before_ack_gets_redelivered(make):
    dying, survivor = make(visibility=1), make(visibility=1)
    await dying.publish("video-1", b"job")
    [first] = await receive_n(dying, 1)
    assert first.attempt == 1
    # `dying` never acks. Until the lease runs out nobody else sees the job ...
    assert await survivor.receive(wait_seconds=0) == []
    # ... and afterwards it is delivered again, as attempt 2.
    await asyncio.sleep(1.2)
    [again] = await receive_n(survivor, 1)
    assert (again.message_id, again.key, again.body, again.attempt) == (
        first.message_id,
        "video-1",
        b"job",
        2,
    )
    await survivor.ack(again)


async def test_release_gives_the_job_back(make):
    queue = make(visibility=30)
    await queue.publish("video-1", b"job")
    [first] = await receive_n(queue, 1)
    await queue.release(first)
    [again] = await receive_n(queue, 1, timeout=3)
    assert (again.message_id, again.attempt) == (first.message_id, 2)
    await queue.ack(again)


async def test_extend_keeps_the_lease(make):
    queue, other = make(visibility=2), make(visibility=2)
    await queue.publish("video-1", b"job")
    [held] = await receive_n(queue, 1)
    for _ in range(3):  # heartbeat past the visibility timeout
        await asyncio.sleep(1)
        await queue.extend(held, 2)
    assert await other.receive(wait_seconds=0) == []
    await queue.ack(held)


async def test_extend_after_the_lease_moved_on_raises_lease_lost(make):
    slow, fast = make(visibility=1), make(visibility=1)
    await slow.publish("video-1", b"job")
    [stale] = await receive_n(slow, 1)
    await asyncio.sleep(1.2)
    [current] = await receive_n(fast, 1)
    assert current.attempt == 2
    # moto accepts a stale receipt handle (AWS SQS rejects it with InvalidParameterValue, which
    # the adapter maps to LeaseLost); that half is only checkable against the other backends.
    if make.backend != "sqs":
        with pytest.raises(LeaseLost):
            await slow.extend(stale, 10)
    await fast.extend(current, 10)
    await fast.ack(current)


async def test_concurrent_consumers_never_share_a_job(make):
    consumers = [make(visibility=30) for _ in range(3)]
    jobs = 30
    for i in range(jobs):
        await consumers[0].publish(f"video-{i}", b"x")
    seen: list[tuple[int, str]] = []

    async def consume(index: int, queue: JobQueue) -> None:
        # until every job was seen (then duplicates would show in `seen`), or nothing came for
        # long enough that nothing will (a guard against a hang, generous for a loaded machine)
        idle_since = time.monotonic()
        while len(seen) < jobs and time.monotonic() - idle_since < 30:
            got = await queue.receive(max_messages=4, wait_seconds=0.2)
            if got:
                idle_since = time.monotonic()
            for delivery in got:
                seen.append((index, delivery.key))
                await asyncio.sleep(0.01)  # "work" while holding the lease
                await queue.ack(delivery)

    await asyncio.gather(*(consume(i, q) for i, q in enumerate(consumers)))
    for queue in consumers:  # a late duplicate would come now
        assert not await queue.receive(max_messages=4, wait_seconds=0.5)
    keys = [key for _, key in seen]
    assert sorted(keys) == sorted(f"video-{i}" for i in range(jobs)), "a job was lost or duplicated"
    if make.backend != "sqlite":  # a single writer may well take them all; others must share
        assert len({index for index, _ in seen}) >= 2


async def test_dead_letter_after_max_deliveries(make):
    queue = make(visibility=1, max_deliveries=2)
    await queue.publish("poison", b"bad video")
    await queue.publish("fine", b"good video")
    attempts = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for delivery in await queue.receive(max_messages=10, wait_seconds=1):
            if delivery.key == "fine":
                await queue.ack(delivery)
            else:
                attempts.append(delivery.attempt)  # crashes on it: never acked
        if len(attempts) >= 2:
            await asyncio.sleep(1.2)  # the last lease runs out ...
            assert await queue.receive(max_messages=10, wait_seconds=1) == []  # ... and it is gone
            break
    assert attempts == [1, 2]
    dead = await queue.dead_letters()
    assert [(d.key, d.body) for d in dead] == [("poison", b"bad video")]
    if make.backend != "sqs":  # SQS reports the receive count on the dead-letter queue
        assert dead[0].attempt == 2


# ------------------------------------------------------------------ database adapter only


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'outbox.db'}"
    return request.getfixturevalue("pg_url")


async def test_publish_in_follows_the_callers_transaction(database_url):
    settings = Settings(database_url=database_url, queue_backend="database")
    name = f"q-{uuid.uuid4().hex[:10]}"
    queue = make_queue(settings, name)
    assert isinstance(queue, DatabaseQueue)
    engine = make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            session.execute(text("SELECT 1"))  # the caller's own work ...
            queue.publish_in(session, "rolled-back", b"x")
            session.rollback()  # ... fails: its job must vanish with it
        with Session(engine) as session, session.begin():
            queue.publish_in(session, "committed", b"y")
            # not visible to consumers before the caller commits
            assert await queue.receive(wait_seconds=0) == []
        got = await receive_n(queue, 2, timeout=2)
        assert [(d.key, d.body) for d in got] == [("committed", b"y")]
    finally:
        await queue.close()
        engine.dispose()


async def test_postgres_claim_skips_locked_rows(pg_url):
    """A consumer in the middle of claiming (rows locked, transaction open) does not block
    another one, which takes the next row instead of waiting or taking the same one."""
    name = f"q-{uuid.uuid4().hex[:10]}"
    queue = make_queue(Settings(database_url=pg_url, queue_backend="database"), name)
    engine = make_engine(pg_url)
    try:
        await queue.publish("first", b"1")
        await queue.publish("second", b"2")
        with engine.connect() as conn, conn.begin():
            locked = conn.execute(
                select(messages.c.key)
                .where(messages.c.queue == name)
                .order_by(messages.c.id)
                .limit(1)
                .with_for_update()
            ).scalar_one()
            assert locked == "first"
            got = await asyncio.wait_for(queue.receive(max_messages=2, wait_seconds=0), timeout=5)
            assert [d.key for d in got] == ["second"]
        [rest] = await receive_n(queue, 1)
        assert rest.key == "first"
    finally:
        await queue.close()
        engine.dispose()


async def test_dead_letters_stay_in_the_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    queue = make_queue(
        Settings(database_url=url, queue_visibility_timeout_seconds=0.2, queue_max_deliveries=1),
        "jobs",
    )
    try:
        await queue.publish("poison", b"x")
        assert len(await queue.receive()) == 1
        await asyncio.sleep(0.3)
        assert await queue.receive(wait_seconds=0) == []
        engine = make_engine(url)
        with engine.connect() as conn:
            row = conn.execute(select(messages)).one()
        engine.dispose()
        assert (row.key, row.deliveries, row.dead_at_us is not None) == ("poison", 1, True)
    finally:
        await queue.close()
