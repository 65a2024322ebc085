"""The gateway's /media check beyond the grant itself (test_media_grants.py): what it remembers
about a video's visibility, for how long, and what a failing Metadata service means."""

from __future__ import annotations

import pytest

from streamify.core import media_grants as grants
from streamify.gateway.authz import LookupFailed, MediaAuthorizer

pytestmark = pytest.mark.unit

KEY = b"k" * 32
VISIBILITY = {"pub": "public", "priv": "private"}  # anything else: no such video


def target(video_id: str, rest: str = "master.m3u8", grant: str = "") -> str:
    return f"/authz/media/videos/{video_id}/{grant + '/' if grant else ''}{rest}"


class Lookups:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, video_id: str) -> str | None:
        self.asked.append(video_id)
        return VISIBILITY.get(video_id)


async def test_a_visibility_once_looked_up_is_answered_without_asking_again():
    lookup = Lookups()
    authz = MediaAuthorizer(KEY, lookup, ttl=60, negative_ttl=60)
    assert authz.quick("GET", target("pub")) == "pub"  # unknown yet: the caller must look it up
    assert await authz.decide("GET", target("pub")) == 200
    assert await authz.decide("GET", target("priv")) == 403
    assert await authz.decide("GET", target("gone")) == 403
    assert authz.quick("GET", target("pub", "720p/seg_00001.m4s")) == 200
    assert authz.quick("HEAD", target("priv")) == 403
    assert authz.quick("GET", target("gone")) == 403
    assert await authz.decide("GET", target("pub")) == 200
    assert lookup.asked == ["pub", "priv", "gone"] and authz.lookups == 3


async def test_a_visibility_is_asked_again_once_its_time_to_live_is_over():
    lookup = Lookups()
    authz = MediaAuthorizer(KEY, lookup, ttl=60, negative_ttl=0)
    assert await authz.decide("GET", target("gone")) == 403
    assert authz.quick("GET", target("gone")) == "gone"  # "not found" is not kept (ttl 0)
    assert await authz.decide("GET", target("pub")) == 200
    assert (
        authz.cached("pub") is True and authz.cached("gone") is None and authz.cached("new") is None
    )
    expired = MediaAuthorizer(KEY, lookup, ttl=0)
    assert await expired.decide("GET", target("pub")) == 200
    assert expired.cached("pub") is None


async def test_metadata_not_answering_is_a_503_and_is_not_remembered():
    async def down(video_id: str) -> str | None:
        raise LookupFailed("unavailable")

    authz = MediaAuthorizer(KEY, down)
    assert await authz.decide("GET", target("pub")) == 503
    assert authz.quick("GET", target("pub")) == "pub"


async def test_a_valid_grant_is_a_200_without_asking_even_for_a_private_video():
    lookup = Lookups()
    authz = MediaAuthorizer(KEY, lookup)
    segment = grants.grant_segment(KEY, "priv", 60)
    assert await authz.decide("GET", target("priv", grant=segment)) == 200
    assert (
        await authz.decide("GET", target("priv", grant=segment) + "?v=2") == 200
    )  # a query is ignored
    assert await authz.decide("DELETE", target("priv", grant=segment)) == 403
    assert lookup.asked == []


async def test_a_grant_for_another_video_does_not_open_this_one():
    lookup = Lookups()
    authz = MediaAuthorizer(KEY, lookup)
    other = grants.grant_segment(KEY, "pub", 60)
    assert await authz.decide("GET", target("priv", grant=other)) == 403
    assert lookup.asked == ["priv"]  # fell back to the visibility: private


@pytest.mark.parametrize(
    "path",
    [
        "/authz/media/videos/pub/%2e%2e/priv/master.m3u8",  # an encoded dot segment
        "/authz/media/videos/pub/a%2F..%2F..%2Fpriv/x",  # encoded slashes
        "/authz/mediavideos/pub/master.m3u8",
        "/media/videos/pub/master.m3u8",
    ],
)
async def test_paths_that_leave_a_videos_directory_are_refused_without_asking(path):
    lookup = Lookups()
    assert await MediaAuthorizer(KEY, lookup).decide("GET", path) == 403
    assert lookup.asked == []
