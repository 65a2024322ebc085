"""Cache-aside reads of videos, with stampede protection and short negative caching.

Writers call `invalidate` after their transaction commits. A per-key generation counter stops a
load that raced with a write from putting the old value back into the cache (within this
process; across replicas the TTL bounds staleness).
"""

from __future__ import annotations

from collections import defaultdict

from streamify.core.cache import NEGATIVE, Cache, SingleFlight
from streamify.core.db import run_in_thread
from streamify.metadata.convert import to_proto
from streamify.metadata.store import VideoStore
from streamify.v1.video_pb2 import Video


def cache_key(video_id: str) -> str:
    return f"video:{video_id}"


class VideoReader:
    def __init__(
        self,
        store: VideoStore,
        cache: Cache,
        *,
        cdn_base_url: str,
        ttl: float,
        negative_ttl: float,
    ) -> None:
        self._store = store
        self._cache = cache
        self._cdn_base_url = cdn_base_url
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._flight = SingleFlight()
        # Bumped by every invalidation; one small int per written video for the process's life.
        self._generation: defaultdict[str, int] = defaultdict(int)

    async def get(self, video_id: str) -> Video | None:
        key = cache_key(video_id)
        cached = await self._cache.get(key)
        if cached is not None:
            return None if cached == NEGATIVE else Video.FromString(cached)
        return await self._flight.do(key, lambda: self._load(video_id, key))

    async def get_fresh(self, video_id: str) -> Video | None:
        """Straight from the database, bypassing the cache (for WatchVideo)."""
        row = await run_in_thread(self._store.get, video_id)
        return None if row is None else to_proto(row, self._cdn_base_url)

    async def invalidate(self, video_id: str) -> None:
        self._generation[video_id] += 1
        key = cache_key(video_id)
        self._flight.forget(key)  # a load that started before the write must not be joined
        await self._cache.delete(key)

    async def _load(self, video_id: str, key: str) -> Video | None:
        generation = self._generation.get(video_id, 0)
        row = await run_in_thread(self._store.get, video_id)
        video = None if row is None else to_proto(row, self._cdn_base_url)
        if self._generation.get(video_id, 0) == generation:
            if video is None:
                await self._cache.set(key, NEGATIVE, self._negative_ttl)
            else:
                await self._cache.set(key, video.SerializeToString(), self._ttl)
        return video
