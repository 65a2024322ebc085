"""The playback URL as a plain HTTP client sees it (what every player does underneath): relative
URIs resolved against the playlist that names them (RFC 8216 section 4.1, RFC 3986), nothing
else carried over -- and a private video's objects refused when the grant is missing, tampered
with or belongs to another video."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest

from tests.interop.conftest import http_status
from tests.interop.urls import MediaURL
from tests.support.clips import parse_master

pytestmark = pytest.mark.interop

THIRD_PARTY = "https://embedder.example"


def fetch(url: str, origin: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Origin": origin} if origin else {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return (
                response.status,
                response.read(),
                {k.lower(): v for k, v in response.headers.items()},
            )
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), {k.lower(): v for k, v in exc.headers.items()}


def media_playlist_objects(text: str) -> list[str]:
    """The EXT-X-MAP init URI and every segment URI of a media playlist, in order."""
    objects = []
    for line in text.splitlines():
        if line.startswith("#EXT-X-MAP:"):
            objects.append(line.split('URI="', 1)[1].split('"', 1)[0])
        elif line and not line.startswith("#"):
            objects.append(line)
    return objects


@pytest.mark.parametrize("visibility", ["public", "unlisted", "private"])
def test_every_object_is_reachable_from_the_playback_url(videos, visibility):
    """Master -> every media playlist -> every init segment and media segment: 200 each, fetched
    with nothing but the URLs the playlists give (and a third-party Origin: CORS allowed)."""
    video = videos[visibility]
    status, body, headers = fetch(video.playback_url, THIRD_PARTY)
    assert status == 200, f"master {video.playback_url}: {status} {body[:300]!r}"
    assert headers.get("access-control-allow-origin") in ("*", THIRD_PARTY), headers
    variants, media = parse_master(body.decode())
    assert sorted(int(v["RESOLUTION"].split("x")[1]) for v in variants) == sorted(video.heights)
    playlists = [urljoin(video.playback_url, v["URI"]) for v in variants]
    playlists += [urljoin(video.playback_url, m["URI"]) for m in media if m.get("URI")]
    refused: list[str] = []
    fetched = 0
    for playlist in playlists:
        status, body, _ = fetch(playlist, THIRD_PARTY)
        if status != 200:
            refused.append(f"{status} {playlist}")
            continue
        for uri in media_playlist_objects(body.decode()):
            url = urljoin(playlist, uri)
            status, _, headers = fetch(url, THIRD_PARTY)
            fetched += 1
            if status != 200 or headers.get("access-control-allow-origin") not in (
                "*",
                THIRD_PARTY,
            ):
                refused.append(f"{status} {url}")
    assert not refused, (
        f"{len(refused)} objects not served (of {len(playlists)} playlists, {fetched} objects):\n"
        + "\n".join(refused[:12])
    )


def _layout(videos) -> tuple[str, str]:
    """(a media playlist, a segment) relative to the master: taken from the PUBLIC video (same
    layout for every video), its lowest rung, which every video of the tier has."""
    public = videos["public"]
    status, body, _ = fetch(public.playback_url)
    assert status == 200, f"public master: {status}"
    variants, _ = parse_master(body.decode())
    playlist = variants[-1]["URI"]  # lowest rung last
    status, body, _ = fetch(urljoin(public.playback_url, playlist))
    assert status == 200, f"public {playlist}: {status}"
    segment = [u for u in media_playlist_objects(body.decode()) if not u.endswith("init.mp4")][0]
    return playlist, urljoin(playlist, segment)


@pytest.mark.parametrize(
    "attack", ["grant removed", "signature tampered", "grant of another video"]
)
def test_private_media_needs_its_own_valid_grant(videos, attack):
    """403 for the master, a media playlist and a segment (objects that exist: they are served
    to the owner's grant and to the same paths of the public video)."""
    playlist, segment = _layout(videos)
    private, other = videos["private"], videos["private_other"]
    granted = MediaURL.parse(private.playback_url)
    assert granted.has_grant, (
        f"the owner's playback_url of a private video carries no grant: {granted}"
    )
    lowest = playlist.split("/", 1)[0]
    assert lowest in {r["id"] for r in other.renditions}, (lowest, other.renditions)

    if attack == "grant removed":
        bad = granted.without_grant()
    elif attack == "signature tampered":
        bad = granted.tampered()
    else:
        bad = granted.for_video(other.id)  # private's grant, other's objects
    answers = {rest: http_status(str(bad.at(rest))) for rest in ("master.m3u8", playlist, segment)}
    # Control: the very same objects of the PUBLIC video are served, so a 403 is the grant's doing.
    public = MediaURL.parse(videos["public"].playback_url)
    controls = {
        rest: http_status(str(public.at(rest))) for rest in ("master.m3u8", playlist, segment)
    }
    assert set(controls.values()) == {200}, f"control (public video): {controls}"
    assert set(answers.values()) == {403}, f"{attack}: {bad.at('master.m3u8')}: {answers}"


@pytest.mark.parametrize("visibility", ["public", "unlisted", "private"])
def test_the_poster_url_obeys_the_same_rules(videos, visibility):
    """The poster URL GetVideo returns is a JPEG any <img> can load from another site; a private
    video's poster needs its grant like every other object of the video."""
    video = videos[visibility]
    status, body, headers = fetch(video.poster_url, THIRD_PARTY)
    assert status == 200 and body[:3] == b"\xff\xd8\xff", (video.poster_url, status, body[:40])
    assert headers.get("access-control-allow-origin") in ("*", THIRD_PARTY), headers
    poster = MediaURL.parse(video.poster_url)
    if visibility == "private":
        assert poster.has_grant, video.poster_url
        assert http_status(str(poster.without_grant())) == 403
        assert http_status(str(poster.tampered())) == 403
    else:
        assert not poster.has_grant, video.poster_url
