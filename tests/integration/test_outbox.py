"""The Upload service's outbox relay on real databases: every replica runs one, and each row
is still delivered once (claimed by one relay at a time), retried when it fails, and taken over
when the relay holding it died. SQLite (embedded) and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import collections

import pytest

from streamify.core.db import make_engine, make_sessions
from streamify.upload import outbox, schema
from streamify.upload.models import OutboxRow
from streamify.v1.events_pb2 import VideoUploadedEvent

pytestmark = pytest.mark.integration
ROWS = 45  # more than two batches


class Effects:
    """Stands in for the Metadata service and the queue: counts each delivery per video."""

    def __init__(self, failing: set[str] = frozenset()) -> None:
        self.published: collections.Counter[str] = collections.Counter()
        self.failing = set(failing)

    async def update_status(self, request) -> None:
        await asyncio.sleep(0.002)  # let the other relay run in between

    async def publish(self, key: str, body: bytes) -> None:
        await asyncio.sleep(0.002)
        if key in self.failing:
            self.failing.discard(key)  # fails once, then works
            raise ConnectionError("queue unreachable")
        self.published[key] += 1


@pytest.fixture(params=["sqlite", "postgres"])
def sessions(request, tmp_path, postgres_server):
    url = (
        f"sqlite:///{tmp_path / 'upload.db'}"
        if request.param == "sqlite"
        else postgres_server.new_database()
    )
    engine = make_engine(url)
    schema.upgrade(engine)
    made = make_sessions(engine)
    with made() as session:
        for i in range(ROWS):
            event = VideoUploadedEvent(video=f"videos/v{i}", size_bytes=1)
            session.add(
                OutboxRow(
                    upload_id=f"u{i}",
                    kind="uploaded",
                    payload=event.SerializeToString(),
                    create_time_us=i,
                )
            )
        session.commit()
    yield made
    engine.dispose()


def _claimable(sessions) -> int:
    """Rows not done that no live claim holds."""
    with sessions() as session:
        return sum(
            1 for row in session.query(OutboxRow) if not row.done and row.claimed_until_us == 0
        )


async def _drain_until_done(relay: outbox.OutboxRelay) -> None:
    for _ in range(50):
        await relay.drain()
        if not await asyncio.to_thread(_claimable, relay._sessions):
            return
    raise AssertionError("rows left")


async def test_two_relays_deliver_every_row_once(sessions):
    effects = Effects()
    relays = [outbox.OutboxRelay(sessions, effects, effects) for _ in range(2)]
    await asyncio.gather(*(relay.drain() for relay in relays), *(relay.drain() for relay in relays))
    await asyncio.gather(*(_drain_until_done(relay) for relay in relays))
    assert sorted(effects.published) == sorted(f"v{i}" for i in range(ROWS))
    assert set(effects.published.values()) == {1}, [
        k for k, n in effects.published.items() if n > 1
    ]
    with sessions() as session:
        assert all(row.done for row in session.query(OutboxRow))


async def test_a_failed_row_is_retried_and_delivered_once(sessions):
    effects = Effects(failing={"v3"})
    relay = outbox.OutboxRelay(sessions, effects, effects)
    assert await relay.drain() is False  # v3 failed this round
    await _drain_until_done(relay)
    assert effects.published["v3"] == 1
    with sessions() as session:
        row = session.query(OutboxRow).filter_by(upload_id="u3").one()
        assert row.done and row.attempts == 2 and row.last_error == ""


async def test_the_rows_of_a_dead_relay_are_taken_over_after_its_claim(sessions, monkeypatch):
    effects = Effects()
    dead = outbox.OutboxRelay(sessions, effects, effects)
    held = await asyncio.to_thread(dead._claim)  # claimed, then the relay "died"
    assert len(held) == outbox.BATCH
    alive = outbox.OutboxRelay(sessions, effects, effects)
    await _drain_until_done(alive)
    assert len(effects.published) == ROWS - outbox.BATCH  # the dead relay's rows wait for its claim
    monkeypatch.setattr(outbox, "CLAIM_SECONDS", 0.0)
    with sessions() as session:  # its claim runs out
        session.query(OutboxRow).filter_by(claimed_by=dead.relay_id).update({"claimed_until_us": 0})
        session.commit()
    await _drain_until_done(alive)
    assert len(effects.published) == ROWS and set(effects.published.values()) == {1}


async def test_a_relay_stopped_mid_delivery_hands_its_rows_back(sessions):
    class Stuck(Effects):
        async def publish(self, key: str, body: bytes) -> None:
            await asyncio.Event().wait()  # the queue hangs; the replica is being stopped

    stuck = outbox.OutboxRelay(sessions, Stuck(), Stuck())
    task = asyncio.create_task(stuck.drain())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    effects = Effects()
    await _drain_until_done(outbox.OutboxRelay(sessions, effects, effects))  # no wait for the claim
    assert len(effects.published) == ROWS


async def test_a_relay_stopped_while_claiming_hands_its_rows_back(sessions):
    """A replica stopped right after CompleteUpload kicked its relay: the claim lands in its
    thread after the task is cancelled, and is handed back all the same."""
    effects = Effects()
    relay = outbox.OutboxRelay(sessions, effects, effects)
    task = asyncio.create_task(relay.drain())
    await asyncio.sleep(0)  # the claim is running in its thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _claimable(sessions) == ROWS
