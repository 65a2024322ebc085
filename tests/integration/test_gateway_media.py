"""/media through the Envoy gateway: SigV4-signed origin requests to a real SeaweedFS (signatures
enforced), Envoy's HTTP cache, Range (including the cold-Range cache bug's workaround), CORS for
players, and private videos guarded by signed grants (ext_authz before the cache)."""

from __future__ import annotations

import asyncio
import itertools
import os

import pytest
import requests

from streamify.core import media_grants as grants
from streamify.core.shared_secrets import media_grant_key
from streamify.v1 import metadata_service_pb2 as api
from streamify.v1.video_pb2 import Video, Visibility
from tests.support.media_gateway import media_gateway
from tests.support.metadata import bearer, running_metadata, service_settings

pytestmark = pytest.mark.integration

ALICE = bearer("alice")
SEGMENT_CC = "public, max-age=31536000, immutable"
PLAYLIST_CC = "public, max-age=2"
_base_ids = itertools.count(201)


class Media:
    def __init__(self, envoy, port, s3, bucket, key, public_id, private_id, unlisted_id):
        self.envoy, self.port, self.s3, self.bucket = envoy, port, s3, bucket
        self.key, self.public_id, self.private_id = key, public_id, private_id
        self.unlisted_id = unlisted_id
        self.segment = os.urandom(1 << 20)
        self.playlist = b"#EXTM3U\n#EXT-X-VERSION:3\n" + b"#EXTINF:2.0,\nseg.ts\n" * 60

    def url(self, key: str) -> str:
        return f"http://127.0.0.1:{self.port}/media/{key}"

    def put(self, key: str, body: bytes, cache_control: str = SEGMENT_CC) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            CacheControl=cache_control,
            ContentType="video/mp2t" if key.endswith(".ts") else "application/vnd.apple.mpegurl",
        )

    def origin_requests(self) -> int:
        return self.envoy.stats("cluster.media_origin.upstream_rq_total").get(
            "cluster.media_origin.upstream_rq_total", 0
        )

    def get(self, key: str, **headers: str) -> requests.Response:
        return requests.get(self.url(key), headers=headers)


@pytest.fixture(scope="module")
async def media(seaweedfs, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gateway-media")
    settings = service_settings(data_dir=tmp, **seaweedfs.settings_overrides())
    async with running_metadata(settings) as metadata:
        public = await metadata.stub.CreateVideo(
            api.CreateVideoRequest(
                video=Video(title="public", visibility=Visibility.VISIBILITY_PUBLIC)
            ),
            metadata=ALICE,
        )
        private = await metadata.stub.CreateVideo(
            api.CreateVideoRequest(
                video=Video(title="private", visibility=Visibility.VISIBILITY_PRIVATE)
            ),
            metadata=ALICE,
        )
        unlisted = await metadata.stub.CreateVideo(
            api.CreateVideoRequest(
                video=Video(title="unlisted", visibility=Visibility.VISIBILITY_UNLISTED)
            ),
            metadata=ALICE,
        )
        async with media_gateway(
            tmp, seaweedfs, settings, metadata.target, next(_base_ids)
        ) as served:
            yield Media(
                served.envoy,
                served.port,
                served.s3,
                seaweedfs.media_bucket,
                media_grant_key(settings),
                public.name.split("/")[1],
                private.name.split("/")[1],
                unlisted.name.split("/")[1],
            )


async def _get(media: Media, key: str, **headers: str) -> requests.Response:
    return await asyncio.to_thread(media.get, key, **headers)


async def test_second_get_is_served_from_the_cache(media):
    seg, playlist = (
        f"videos/{media.public_id}/hit/seg0.ts",
        f"videos/{media.public_id}/hit/index.m3u8",
    )
    media.put(seg, media.segment)
    media.put(playlist, media.playlist, PLAYLIST_CC)
    for key, body, cc in (
        (seg, media.segment, SEGMENT_CC),
        (playlist, media.playlist, PLAYLIST_CC),
    ):
        first = await _get(media, key)
        assert first.status_code == 200 and first.content == body, first.content[:300]
        assert first.headers["cache-control"] == cc and "age" not in first.headers
        origin = media.origin_requests()
        second = await _get(media, key)
        assert second.status_code == 200 and second.content == body
        assert "age" in second.headers  # answered by Envoy's cache
        assert media.origin_requests() == origin  # the origin was not asked


async def test_range_gets_206_with_the_right_bytes(media):
    key = f"videos/{media.public_id}/range/seg1.ts"
    media.put(key, media.segment)
    assert (await _get(media, key)).status_code == 200  # cached by a full GET
    r = await _get(media, key, Range="bytes=1000-1999")
    assert r.status_code == 206 and r.content == media.segment[1000:2000]
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(media.segment)}"
    r = await _get(media, key, Range="bytes=-16")
    assert r.status_code == 206 and r.content == media.segment[-16:]


async def test_a_cold_range_request_does_not_poison_the_cache(media):
    key = f"videos/{media.public_id}/range/seg2.ts"
    media.put(key, media.segment)
    cold = await _get(media, key, Range="bytes=100-199")  # nothing cached yet
    assert cold.status_code == 206 and cold.content == media.segment[100:200], str(
        sorted(cold.headers.items())
    )
    assert cold.headers["content-range"] == f"bytes 100-199/{len(media.segment)}"
    origin = media.origin_requests()
    full = await _get(media, key)
    assert full.status_code == 200 and full.content == media.segment  # the whole object
    assert "age" in full.headers and media.origin_requests() == origin  # from the cache
    again = await _get(media, key, Range="bytes=500-599")
    assert again.status_code == 206 and again.content == media.segment[500:600]


async def test_players_get_cors_headers(media):
    key = f"videos/{media.public_id}/cors/index.m3u8"
    media.put(key, media.playlist, PLAYLIST_CC)
    r = await _get(media, key, Origin="http://player.test")
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://player.test"
    exposed = r.headers["access-control-expose-headers"].lower()
    assert {"content-length", "content-range", "accept-ranges"} <= set(exposed.split(","))
    pre = await asyncio.to_thread(
        requests.options,
        media.url(key),
        headers={
            "origin": "http://player.test",
            "access-control-request-method": "GET",
            "access-control-request-headers": "range",
        },
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "http://player.test"
    assert "GET" in pre.headers["access-control-allow-methods"]


def _granted(media, key: str, ttl: float = 60, video_id: str | None = None) -> str:
    """`key` (videos/{id}/rest) as a player gets it: the grant segment after the video's dir."""
    video_id = video_id or media.private_id
    segment = grants.grant_segment(media.key, video_id, ttl)
    return grants.with_grant("/" + key, key.split("/")[1], segment).lstrip("/")


async def test_private_video_needs_a_valid_grant_in_its_path(media):
    key = f"videos/{media.private_id}/720p/seg0.ts"
    media.put(key, media.segment)
    assert (await _get(media, key)).status_code == 403
    ok = await _get(media, _granted(media, key))
    assert ok.status_code == 200 and ok.content == media.segment
    # now it is in the cache: still 403 without a grant (ext_authz runs before the cache)
    assert (await _get(media, key)).status_code == 403
    assert (await _get(media, key, Range="bytes=0-9")).status_code == 403
    assert (await _get(media, _granted(media, key, ttl=-10))).status_code == 403  # expired
    exp, sig = grants.sign(media.key, media.private_id, 60)
    later = key.replace(f"{media.private_id}/", f"{media.private_id}/grant.{exp + 3600}.{sig}/", 1)
    assert (await _get(media, later)).status_code == 403  # a longer expiry, the old signature
    # a grant for another video, moved onto this one, or this grant walked over to another video
    public_grant = grants.grant_segment(media.key, media.public_id, 60)
    assert (
        await _get(
            media, key.replace(f"{media.private_id}/", f"{media.private_id}/{public_grant}/", 1)
        )
    ).status_code == 403
    escape = f"videos/{media.public_id}/{public_grant}/../../{media.private_id}/720p/seg0.ts"
    assert await _raw_status(media, escape) == 403
    # junk where a grant goes is no grant: 403, never a reset (503) or an error
    for junk in ("grant.%C3%A9%FF.x", "grant.", "grant.1.2.3", "grant.%00", "grant.1.\xe9\xff"):
        bad = key.replace(f"{media.private_id}/", f"{media.private_id}/{junk}/", 1)
        assert await _raw_status(media, bad) in (400, 403), junk


async def _raw_status(media, key: str) -> int:
    """GET /media/{key} exactly as given, raw bytes on the socket (no client-side
    normalisation or encoding; non-ASCII characters go out as Latin-1 bytes)."""
    import socket

    def get() -> int:
        with socket.create_connection(("127.0.0.1", media.port), timeout=10) as sock:
            sock.sendall(
                b"GET /media/"
                + key.encode("latin-1")
                + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            head = b""
            while b"\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
        return int(head.split(b" ", 2)[1])

    return await asyncio.to_thread(get)


async def test_one_cache_entry_serves_every_grant(media):
    key = f"videos/{media.private_id}/720p/shared.m4s"
    media.put(key, media.segment)
    first = await _get(media, _granted(media, key, ttl=60))
    assert first.status_code == 200
    before = media.origin_requests()
    second = await _get(media, _granted(media, key, ttl=120))  # another viewer's grant
    assert second.status_code == 200 and second.content == media.segment
    assert media.origin_requests() == before, "a second grant must be a cache hit"


async def test_relative_uris_inherit_the_grant(media):
    master = f"videos/{media.private_id}/master.m3u8"
    media.put(master, b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n", PLAYLIST_CC)
    media.put(f"videos/{media.private_id}/360p/index.m3u8", media.playlist, PLAYLIST_CC)
    media.put(f"videos/{media.private_id}/360p/seg.ts", media.segment)
    from urllib.parse import urljoin

    url = media.url(_granted(media, master))
    playlist_url = urljoin(url, "360p/index.m3u8")
    segment_url = urljoin(playlist_url, "seg.ts")
    for target in (url, playlist_url, segment_url):
        assert (await asyncio.to_thread(requests.get, target)).status_code == 200, target


async def test_unlisted_video_is_readable_with_its_link_alone(media):
    key = f"videos/{media.unlisted_id}/720p/seg0.ts"
    media.put(key, media.segment)
    r = await _get(media, key)
    assert r.status_code == 200 and r.content == media.segment


async def test_public_video_is_readable_without_a_grant_and_other_keys_are_not(media):
    key = f"videos/{media.public_id}/seg0.ts"
    media.put(key, media.segment)
    r = await _get(media, key)
    assert r.status_code == 200 and r.content == media.segment
    media.put("posters/loose.jpg", b"jpeg")
    assert (await _get(media, "posters/loose.jpg")).status_code == 403
    assert (await _get(media, "videos/nosuchvideo/seg0.ts")).status_code == 403
