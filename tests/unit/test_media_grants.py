"""Media grants in the URL path, and the gateway's access check that reads them.

A grant opens exactly one video's objects until it expires; editing any part of the URL (the
video id, the expiry, the signature, a dot segment) must not open anything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamify.core import media_grants as grants
from streamify.gateway.authz import MediaAuthorizer

KEY = b"k" * 32
VIDEO_IDS = st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True)


async def _never(video_id):  # pragma: no cover - must not be called
    raise AssertionError("lookup")


def _target(video_id: str, segment: str, rest: str = "master.m3u8") -> str:
    return f"/authz/media/videos/{video_id}/{segment}/{rest}"


def test_a_grant_opens_its_video_until_it_expires():
    segment = grants.grant_segment(KEY, "abc", 60, now=1000)
    assert grants.verify(KEY, "abc", segment, now=1000)
    assert grants.verify(KEY, "abc", segment, now=1060)
    assert not grants.verify(KEY, "abc", segment, now=1061)  # expired
    assert not grants.verify(KEY, "abd", segment, now=1000)  # another video
    assert not grants.verify(b"x" * 32, "abc", segment, now=1000)  # another key


@given(video_id=VIDEO_IDS, other=VIDEO_IDS, position=st.integers(min_value=0, max_value=200))
def test_no_edit_of_a_grant_opens_anything(video_id, other, position):
    segment = grants.grant_segment(KEY, video_id, 3600)
    index = position % len(segment)
    flipped = segment[:index] + ("A" if segment[index] != "A" else "B") + segment[index + 1 :]
    assert not grants.verify(KEY, video_id, flipped)
    if other != video_id:
        assert not grants.verify(KEY, other, segment)


def test_a_later_expiry_with_the_old_signature_is_refused():
    expires, signature = grants.sign(KEY, "abc", 60)
    assert not grants.verify(KEY, "abc", f"grant.{expires + 3600}.{signature}")


def test_the_grant_goes_after_the_video_directory_so_relative_uris_inherit_it():
    segment = grants.grant_segment(KEY, "abc", 60)
    url = grants.with_grant("http://cdn/media/videos/abc/master.m3u8", "abc", segment)
    assert url == f"http://cdn/media/videos/abc/{segment}/master.m3u8"
    # what a player does with "720p/index.m3u8" in the master and "seg_00001.m4s" in it
    from urllib.parse import urljoin

    segment_url = urljoin(urljoin(url, "720p/index.m3u8"), "seg_00001.m4s")
    assert segment_url == f"http://cdn/media/videos/abc/{segment}/720p/seg_00001.m4s"
    with pytest.raises(ValueError):
        grants.with_grant("http://cdn/media/videos/abd/master.m3u8", "abc", segment)


@pytest.mark.parametrize(
    "path, expected",
    [
        ("videos/abc/master.m3u8", grants.MediaKey("abc", "", "videos/abc/master.m3u8")),
        (
            "videos/abc/grant.1.x/720p/s.m4s",
            grants.MediaKey("abc", "grant.1.x", "videos/abc/720p/s.m4s"),
        ),
        ("videos/abc/", None),
        ("videos/abc/grant.1.x/", None),
        ("videos/ABC/x.ts", None),
        ("videos/abc/../def/x.ts", None),
        ("videos/abc/grant.1.x/../../def/x.ts", None),
        ("videos/abc/./x.ts", None),
        ("other/x.ts", None),
    ],
)
def test_media_paths_split_into_video_grant_and_object(path, expected):
    assert grants.parse_media_key(path) == expected


@pytest.mark.parametrize(
    "target",
    [
        "/authz/media/other/x.ts",
        "/authz/media/videos/ABC/x.ts",
        "/authz/media/videos/abc/",
        "/authz/media/videos/abc/../def/x.ts",
        "/authz/elsewhere",
    ],
)
def test_authz_denies_keys_outside_a_video_without_asking(target):
    assert MediaAuthorizer(KEY, _never).quick("GET", target) == 403


def test_authz_accepts_a_valid_grant_without_asking_metadata():
    segment = grants.grant_segment(KEY, "abc", 60)
    authz = MediaAuthorizer(KEY, _never)
    assert authz.quick("GET", _target("abc", segment)) == 200
    assert authz.quick("HEAD", _target("abc", segment, "720p/seg_00001.m4s")) == 200
    assert authz.quick("POST", _target("abc", segment)) == 403


def test_authz_refuses_a_deleted_videos_grant_and_only_that_videos():
    authz = MediaAuthorizer(KEY, _never)
    authz.forget("abc", keep_seconds=60)  # the video event feed said it was deleted
    assert authz.quick("GET", _target("abc", grants.grant_segment(KEY, "abc", 60))) == 403
    assert authz.quick("GET", _target("abd", grants.grant_segment(KEY, "abd", 60))) == 200
    authz.forget("other", keep_seconds=-1)  # entries past their keep are dropped on the next
    authz.forget("abd", keep_seconds=60)
    assert "other" not in authz._deleted and "abc" in authz._deleted


@pytest.mark.parametrize(
    "segment",
    [
        "grant.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # expired long ago, wrong signature
        "grant.\u00e9\u00e9.\u00e9",
        "grant..",
        "grant",
    ],
)
def test_a_malformed_or_invalid_grant_is_no_grant(segment):
    async def private(video_id):
        return "private"

    authz = MediaAuthorizer(KEY, private)
    assert authz.quick("GET", _target("abc", segment)) == "abc"  # falls back to the visibility


def test_a_path_that_is_not_utf8_is_refused():
    assert MediaAuthorizer(KEY, _never).quick("GET", _target("abc", "grant.%FF%FE.%C3%A9")) == 403


async def test_an_invalid_grant_on_a_private_video_is_refused_and_on_a_public_one_allowed():
    async def lookup(video_id):
        return {"priv": "private", "pub": "public"}.get(video_id)

    authz = MediaAuthorizer(KEY, lookup)
    bad = "grant.99999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    assert await authz.decide("GET", _target("priv", bad)) == 403
    assert await authz.decide("GET", _target("pub", bad)) == 200
    assert await authz.decide("GET", _target("gone", bad)) == 403
