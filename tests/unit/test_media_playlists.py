"""Playlist text: target duration, EVENT vs VOD, master attributes, silent videos."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamify.transcode.media.models import Segment
from streamify.transcode.media.playlists import (
    AudioRendition,
    Bandwidth,
    Variant,
    master_playlist,
    media_playlist,
)
from tests.support.clips import parse_master

pytestmark = pytest.mark.unit


def segs(*durations: float, size: int = 100_000, first: int = 0) -> list[Segment]:
    return [
        Segment(first + i, Path(f"/x/720p/seg_{first + i:05d}.m4s"), d, size)
        for i, d in enumerate(durations)
    ]


def test_vod_playlist_ends_with_endlist_and_lists_every_segment():
    text = media_playlist(segs(4.0, 4.0, 2.5), target_duration=4.0, ended=True)
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in lines
    assert "#EXT-X-TARGETDURATION:4" in lines
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in lines
    assert '#EXT-X-MAP:URI="init.mp4"' in lines
    assert lines[-1] == "#EXT-X-ENDLIST"
    assert [ln for ln in lines if not ln.startswith("#")] == [
        "seg_00000.m4s",
        "seg_00001.m4s",
        "seg_00002.m4s",
    ]
    assert "#EXTINF:2.500000," in lines


def test_growing_playlist_is_event_without_endlist():
    text = media_playlist(segs(4.0, 4.0), target_duration=4.0, ended=False)
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text
    assert "#EXT-X-ENDLIST" not in text


def test_target_duration_is_the_ceiling_of_the_longest_segment():
    assert "#EXT-X-TARGETDURATION:5" in media_playlist(segs(4.011, 3.989), ended=True)
    assert "#EXT-X-TARGETDURATION:4" in media_playlist(segs(4.0000001, 2.0), ended=True)
    # while growing, it never drops below the planned segment length
    assert "#EXT-X-TARGETDURATION:4" in media_playlist(segs(1.0), target_duration=4, ended=False)


def test_media_sequence_starts_at_the_first_segment_and_gaps_are_refused():
    assert "#EXT-X-MEDIA-SEQUENCE:3" in media_playlist(segs(4.0, first=3), ended=False)
    with pytest.raises(ValueError):
        media_playlist([*segs(4.0), *segs(4.0, first=2)], ended=True)


def test_bandwidth_peak_is_the_largest_segment_rate_and_ignores_a_tiny_tail():
    segments = [
        *segs(4.0, size=400_000),
        *segs(4.0, size=800_000, first=1),
        *segs(0.02, size=5_000, first=2),
    ]
    bw = Bandwidth.of(segments)
    assert bw.peak == 1_600_000
    assert bw.average == pytest.approx((1_205_000 * 8) / 8.02, abs=1)


def video(uri: str, w: int, h: int, peak: int, avg: int) -> Variant:
    return Variant(uri, w, h, "avc1.64001f", 30.0, Bandwidth(peak, avg))


def test_master_with_audio_adds_the_audio_group_and_bitrate():
    audio = AudioRendition("audio/index.m3u8", "mp4a.40.2", Bandwidth(140_000, 130_000))
    text = master_playlist(
        [
            video("360p/index.m3u8", 640, 360, 900_000, 800_000),
            video("720p/index.m3u8", 1280, 720, 3_000_000, 2_500_000),
        ],
        audio,
    )
    variants, media = parse_master(text)
    assert media == [
        {
            "TYPE": "AUDIO",
            "GROUP-ID": "audio",
            "NAME": "default",
            "DEFAULT": "YES",
            "AUTOSELECT": "YES",
            "CHANNELS": "2",
            "URI": "audio/index.m3u8",
        }
    ]
    first = variants[0]
    assert first["BANDWIDTH"] == "1040000"
    assert first["AVERAGE-BANDWIDTH"] == "930000"
    assert first["RESOLUTION"] == "640x360"
    assert first["CODECS"] == "avc1.64001f,mp4a.40.2"
    assert first["FRAME-RATE"] == "30.000"
    assert first["AUDIO"] == "audio"
    assert [v["URI"] for v in variants] == ["360p/index.m3u8", "720p/index.m3u8"]


def test_master_of_a_silent_video_has_no_audio_group():
    text = master_playlist([video("240p/index.m3u8", 426, 240, 500_000, 400_000)], None)
    variants, media = parse_master(text)
    assert media == []
    assert "AUDIO" not in variants[0]
    assert variants[0]["CODECS"] == "avc1.64001f"
    assert variants[0]["BANDWIDTH"] == "500000"
