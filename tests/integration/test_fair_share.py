"""Tasks are shared fairly between users: a user who queued many videos does not make another
user's single clip wait behind all of them, and within one user the oldest task goes first.
The real orchestrator store, on SQLite and on PostgreSQL (where replicas claim concurrently)."""

from __future__ import annotations

import pytest

from streamify.core.config import TranscodeSettings
from streamify.core.db import make_engine, make_sessions
from streamify.transcode.orchestrator import schema
from streamify.transcode.orchestrator.store import Store

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path, postgres_server):
    url = (
        f"sqlite:///{tmp_path / 'transcode.db'}"
        if request.param == "sqlite"
        else postgres_server.new_database()
    )
    engine = make_engine(url)
    schema.upgrade(engine)
    yield Store(make_sessions(engine), TranscodeSettings(), "media")
    engine.dispose()


def submit(store: Store, owner: str, count: int) -> list[str]:
    ids = [f"{owner.removeprefix('users/')}{i:03d}" for i in range(count)]
    for job_id in ids:
        store.create_job(job_id, owner, "uploads", f"sources/{job_id}/u", 1000)
    return ids


def test_a_single_clip_is_not_queued_behind_another_users_fifty_videos(store):
    heavy = submit(store, "users/heavy", 50)
    [light] = submit(store, "users/light", 1)  # submitted last
    first, second = store.claim("w1", 1), store.claim("w2", 1)
    assert [c.job_id for c in first + second] == [heavy[0], light]
    # then heavy's next oldest: nobody else waits
    assert [c.job_id for c in store.claim("w3", 2)] == heavy[1:3]


def test_one_claim_of_several_slots_interleaves_the_users(store):
    a = submit(store, "users/a", 5)
    b = submit(store, "users/b", 5)
    c = submit(store, "users/c", 1)
    claimed = {x.job_id for x in store.claim("w1", 6)}
    # one each in turn (oldest user first among equals): a, b, c, then a, b, and a again
    assert claimed == {a[0], a[1], a[2], b[0], b[1], c[0]}


def test_each_task_is_claimed_once(store):
    submit(store, "users/a", 3)
    submit(store, "users/b", 3)
    seen = [c.job_id for _ in range(10) for c in store.claim("w", 2)]
    assert len(seen) == len(set(seen)) == 6
