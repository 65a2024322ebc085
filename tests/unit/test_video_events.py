"""The follower of the video event feed: in order, at least once, and a lagging follower
handles only what is old enough."""

from __future__ import annotations

import pytest

from streamify.core.clock import now_us, timestamp_of
from streamify.core.video_events import MemoryCursor, VideoEventFollower
from streamify.v1.metadata_service_pb2 import VideoEvent, VideoEventType

DELETED = VideoEventType.VIDEO_EVENT_TYPE_DELETED


class Feed:
    def __init__(self, ages_seconds: list[float]) -> None:
        self.events = [
            VideoEvent(
                sequence=i + 1,
                video=f"videos/v{i + 1}",
                type=DELETED,
                create_time=timestamp_of(now_us() - int(age * 1e6)),
            )
            for i, age in enumerate(ages_seconds)
        ]

    async def list_video_events(self, after: int, page_size: int) -> list[VideoEvent]:
        return [e for e in self.events if e.sequence > after][:page_size]


def follower(feed: Feed, handle, **options) -> tuple[VideoEventFollower, MemoryCursor]:
    cursor = MemoryCursor("test")
    return VideoEventFollower(feed, cursor, handle, **options), cursor  # type: ignore[arg-type]


async def test_events_are_handled_in_order_and_the_position_kept():
    seen: list[str] = []

    async def handle(event: VideoEvent) -> None:
        seen.append(event.video)

    f, cursor = follower(Feed([30, 20, 10]), handle)
    assert await f.follow_once() == 3
    assert seen == ["videos/v1", "videos/v2", "videos/v3"] and cursor.load() == 3
    assert await f.follow_once() == 0  # nothing new: nothing handled twice


async def test_an_event_whose_handler_fails_is_handled_again_and_nothing_after_it_first():
    seen: list[str] = []
    failing = {"videos/v2"}

    async def handle(event: VideoEvent) -> None:
        if event.video in failing:
            raise RuntimeError("storage away")
        seen.append(event.video)

    f, cursor = follower(Feed([30, 20, 10]), handle)
    with pytest.raises(RuntimeError):
        await f.follow_once()
    assert seen == ["videos/v1"] and cursor.load() == 1
    failing.clear()
    assert await f.follow_once() == 2
    assert seen == ["videos/v1", "videos/v2", "videos/v3"]


async def test_a_lagging_follower_stops_at_the_first_event_not_old_enough():
    seen: list[str] = []

    async def handle(event: VideoEvent) -> None:
        seen.append(event.video)

    f, cursor = follower(Feed([600, 400, 100, 500]), handle, min_age_seconds=300)
    assert await f.follow_once() == 2
    assert seen == ["videos/v1", "videos/v2"] and cursor.load() == 2
