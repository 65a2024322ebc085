"""Playlists from task results, beyond test_orchestrator_dag.py's examples: what a player reads
(init segment, target duration, codecs, channels) and what Metadata is told about each rendition."""

from __future__ import annotations

import pytest

from streamify.core.config import TranscodeSettings
from streamify.transcode.orchestrator import dag
from streamify.transcode.orchestrator.assembly import AssemblyError, assemble
from streamify.v1 import worker_service_pb2 as wapi

pytestmark = pytest.mark.unit

OPTIONS = TranscodeSettings(orchestrator_id="t", segment_seconds=4.0, segments_per_chunk=1)


def plan_of(seconds: float = 10.0, channels: int | None = 2) -> dag.Plan:
    p = wapi.ProbeResult(format="mov,mp4,m4a,3gp,3g2,mj2", duration=dag.seconds(seconds))
    p.video.CopyFrom(wapi.VideoStreamInfo(codec="h264", width=640, height=360, frame_rate=30.0))
    if channels is not None:
        p.audio.CopyFrom(wapi.AudioStreamInfo(codec="aac", sample_rate=48000, channels=channels))
    return dag.make_plan(dag.media_info(p), OPTIONS)


def seg(prefix: str, index: int, seconds: float, size: int) -> wapi.SegmentInfo:
    return wapi.SegmentInfo(
        index=index,
        key=f"{prefix}seg_{index:05d}.m4s",
        duration=dag.seconds(seconds),
        size_bytes=size,
    )


def chunks_of(
    plan: dag.Plan, *, codecs=("avc1.64001e",), init: str = "init_v2.mp4"
) -> dict[int, wapi.ChunkResult]:
    """Chunk results; chunk i reports codecs[i] (or "" past the tuple) and the init key only once."""
    out = {}
    for c in plan.chunks:
        result = wapi.ChunkResult()
        for r in plan.renditions:
            rc = result.renditions.add(
                rendition_id=r.id,
                codecs=codecs[c.index] if c.index < len(codecs) else "",
                init_key=f"videos/v1/{r.id}/{init}" if c.index == 0 else "",
            )
            for i in range(c.first_segment_index, c.first_segment_index + c.segment_count):
                rc.segments.append(
                    seg(f"videos/v1/{r.id}/", i, min(4.0, plan.duration - 4 * i), 100_000)
                )
        out[c.index] = result
    return out


def audio_of(plan: dag.Plan, codecs: str = "mp4a.40.2", seconds: float = 3.2) -> wapi.AudioResult:
    count = plan.segment_count
    return wapi.AudioResult(
        codecs=codecs,
        init_key="videos/v1/audio/init_a7.mp4",
        segments=[seg("videos/v1/audio/", i, seconds, 32_000) for i in range(count)],
    )


def files_of(out) -> dict[str, str]:
    return {f.key: f.body for f in out.files}


def test_players_are_pointed_at_each_renditions_own_init_segment_and_a_steady_target_duration():
    plan = plan_of()
    out = assemble("v1", plan, chunks_of(plan), audio_of(plan, seconds=2.9), 1, final=False)
    files = files_of(out)
    video, audio = files["videos/v1/360p/index.m3u8"], files["videos/v1/audio/index.m3u8"]
    assert '#EXT-X-MAP:URI="init_v2.mp4"' in video  # chunk 0's, the later chunks report none
    assert '#EXT-X-MAP:URI="init_a7.mp4"' in audio
    # the first chunk alone holds one 4 s segment; audio segments are 2.9 s: the target is the
    # plan's 4 s in both, from the first EVENT playlist on (players reject a target that grows)
    assert "#EXT-X-TARGETDURATION:4" in video and "#EXT-X-TARGETDURATION:4" in audio
    assert out.master.key == "videos/v1/master.m3u8" and out.master is out.files[-1]
    final = assemble("v1", plan, chunks_of(plan), audio_of(plan), 3, final=True)
    assert '#EXT-X-MAP:URI="init_v2.mp4"' in files_of(final)["videos/v1/360p/index.m3u8"]


def test_short_video_segments_still_get_the_plans_target_duration():
    plan = plan_of(2.5)  # one 2.5 s segment
    out = assemble("v1", plan, chunks_of(plan), audio_of(plan, seconds=2.5), 1, final=True)
    assert "#EXT-X-TARGETDURATION:4" in files_of(out)["videos/v1/360p/index.m3u8"]


def test_the_master_names_the_codecs_and_channels_the_workers_reported_or_safe_defaults():
    plan = plan_of(channels=6)
    out = assemble(
        "v1",
        plan,
        chunks_of(plan, codecs=("avc1.64001f", "")),
        audio_of(plan, "ec-3"),
        3,
        final=True,
    )
    master = out.master.body
    assert 'CODECS="avc1.64001f,ec-3"' in master  # the first chunk that says wins
    assert 'CHANNELS="6"' in master
    unnamed = assemble("v1", plan, chunks_of(plan, codecs=()), audio_of(plan, ""), 3, final=True)
    assert 'CODECS="avc1.640028,mp4a.40.2"' in unnamed.master.body


def test_metadata_is_told_every_rendition_with_video_and_audio_bandwidth_added():
    plan = plan_of()
    out = assemble("v1", plan, chunks_of(plan), audio_of(plan), 3, final=True)
    assert [(r.id, r.width, r.height) for r in out.renditions] == [
        ("360p", 640, 360),
        ("240p", 426, 240),
    ]
    top = out.renditions[0]
    # video: 100 kB per segment; the 2 s last one (half the longest, so it counts) peaks
    video_peak, video_average = 400_000, 240_000  # bits/s: 800 kbit in 2 s; 2.4 Mbit in 10 s
    audio_peak = audio_average = 80_000  # 32 kB per 3.2 s
    assert (top.bandwidth, top.average_bandwidth) == (
        video_peak + audio_peak,
        video_average + audio_average,
    )


def test_a_silent_video_assembles_without_an_audio_result():
    plan = plan_of(channels=None)
    out = assemble("v1", plan, chunks_of(plan), None, 3, final=True)
    assert "videos/v1/audio/index.m3u8" not in files_of(out)
    assert "#EXT-X-MEDIA" not in out.master.body
    assert out.renditions[0].codecs == "avc1.64001e"


@pytest.mark.parametrize("run", [0, -1, 4])
def test_a_run_outside_the_plan_is_a_programming_error(run):
    plan = plan_of()
    with pytest.raises(ValueError, match=r"run must be 1\.\.3"):
        assemble("v1", plan, chunks_of(plan), audio_of(plan), run, final=False)


def test_the_final_playlists_cover_every_chunk_and_need_every_result():
    plan = plan_of()
    with pytest.raises(ValueError, match="cover every chunk"):
        assemble("v1", plan, chunks_of(plan), audio_of(plan), 2, final=True)
    chunks = chunks_of(plan)
    del chunks[1]
    with pytest.raises(ValueError, match="chunk 1 has no result"):
        assemble("v1", plan, chunks, audio_of(plan), 3, final=True)
    with pytest.raises(ValueError, match="the audio has no result"):
        assemble("v1", plan, chunks_of(plan), None, 3, final=True)


def test_a_chunk_without_a_rendition_or_audio_without_segments_is_incomplete():
    plan = plan_of()
    chunks = chunks_of(plan)
    del chunks[2].renditions[1]
    with pytest.raises(AssemblyError, match="chunk 2 has no rendition 240p"):
        assemble("v1", plan, chunks, audio_of(plan), 3, final=True)
    empty = wapi.AudioResult(codecs="mp4a.40.2")
    with pytest.raises(AssemblyError, match="the audio has no segments"):
        assemble("v1", plan, chunks_of(plan), empty, 3, final=True)
    gap = audio_of(plan)
    del gap.segments[1]
    with pytest.raises(AssemblyError, match="audio: segment 1 is missing"):
        assemble("v1", plan, chunks_of(plan), gap, 3, final=True)
