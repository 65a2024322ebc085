"""Differential test: Streamify against the ffmpeg CLI on a corpus of real-world upload shapes
(tests/support/corpus.py: joined TS recordings with clock jumps, fragmented MP4, edit lists,
interlaced broadcast, anamorphic SD, several audio tracks, phone and screen recordings, odd
containers, audio-only, truncated and garbage files, 8K).

The oracle, per file: ``ffmpeg -v error -i INPUT -map 0:<first real video stream> -f
framecrc -`` (corpus.reference). "ffmpeg produces a valid output" = it exits 0 and decodes at
least one video frame (cover art does not count). Then, through the REAL system (Metadata, the
orchestrator, two worker processes, SeaweedFS; one set-up for the whole corpus, every job
submitted at once so the workers stay busy):

* ffmpeg plays it  => the video ends READY and its output plays: a master playlist, every
  rung's segments decode with PyAV at the rung's size, the rung lasts as long as ffmpeg's
  decode (within 0.1 s + one frame), the audio rendition (if any) decodes;
* ffmpeg refuses   => the video ends FAILED with a reason for a person: one of the pipeline's
  documented sentences (media.errors.DOCUMENTED) and none of libav's or the OS's own texts;
* a case marked ``too_large`` is read by ffmpeg but refused on purpose: FAILED, reason
  TOO_LARGE naming both sizes.

Never skipped: without the ffmpeg CLI the corpus cannot be built and the test fails.
"""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest

from streamify.transcode.media.errors import Reason, documented_reason
from streamify.transcode.orchestrator import dag
from streamify.v1 import transcode_service_pb2 as api
from streamify.v1.video_pb2 import Video, VideoStatus
from tests.support import clips, corpus
from tests.support.transcode import (
    FAILED,
    SUCCEEDED,
    Mesh,
    OutputChecker,
    describe,
    running_mesh,
)

pytestmark = pytest.mark.integration

# Texts of libav (av_strerror), of the OS (strerror) and of Python that mean nothing to the
# person who uploaded the file; a failure reason must contain none of them.
RAW_ERROR_TEXTS = (
    "Invalid argument",
    "Operation not permitted",
    "Invalid data found when processing input",
    "[Errno",
    "Errno",
    "End of file",
    "Traceback",
    'File "',
    ", line ",
    "Exception",
    "Error number",
    "Immediate exit requested",
    "Resource temporarily unavailable",
    "No such file or directory",
    "Input/output error",
    "Bug detected",
    "Unknown error",
    "Decoder not found",
    "Demuxer not found",
    "Not yet implemented",
    "Broken pipe",
    "Server returned",
    "AVERROR",
    "av.error",
    "X-Amz",
    "Signature",
)

# Duration agreement with ffmpeg's decode: output frames are on a constant-rate grid (VFR
# sources are resampled), and the last frame of a cut-off file may differ by a frame.
DURATION_TOLERANCE = 0.1


@dataclass
class Run:
    case: corpus.Case
    source: Path
    reference: corpus.Reference
    video_id: str
    job: api.TranscodeJob
    video: Video


@pytest.fixture(scope="module")
async def corpus_runs(tmp_path_factory, seaweedfs):
    """Builds the corpus (cached), runs the reference on every file, then submits every file
    to one mesh at once and waits for all of them. Yields (mesh, runs by case name)."""
    started = time.monotonic()
    sources = await asyncio.to_thread(corpus.build_all)
    references = {
        name: await asyncio.to_thread(corpus.reference, path) for name, path in sources.items()
    }
    root = tmp_path_factory.mktemp("corpus")
    # One chunk of 2 x 1 s segments from the start: short clips are still split (and joined)
    # in two chunks, with two tasks fewer per job than a 1-segment first chunk.
    async with running_mesh(root, seaweedfs, workers=2, transcode_first_chunk_segments=2) as mesh:
        ids = {}
        for case in corpus.CASES:
            ids[case.name] = await mesh.submit(sources[case.name], title=case.name)
        runs = {}
        for case in corpus.CASES:
            video_id = ids[case.name]
            job = await mesh.finished_job(video_id)  # bounded wait: never stuck
            video = await mesh.final_video(video_id)
            runs[case.name] = Run(
                case, sources[case.name], references[case.name], video_id, job, video
            )
        # The table of outcomes (shown with `pytest -s`).
        print(f"\ncorpus: {len(runs)} files through the mesh in {time.monotonic() - started:.1f} s")
        for run in runs.values():
            ref = run.reference
            verdict = f"plays {ref.frames} frames {ref.duration:.3f} s" if ref.plays else "refuses"
            state = api.JobState.Name(run.job.state).removeprefix("JOB_STATE_")
            print(
                f"  {run.case.name:32} ffmpeg {verdict:26} streamify {state} "
                f"{run.job.failure_reason}"
            )
        yield mesh, runs


def check_reason(reason: str) -> str:
    """The reason is a documented sentence for a person; returns its reason code."""
    for raw in RAW_ERROR_TEXTS:
        assert raw not in reason, f"raw error text {raw!r} in the reason: {reason!r}"
    code = documented_reason(reason)
    assert code is not None, f"not one of the documented reasons (media.errors): {reason!r}"
    assert reason[0].islower() and "\n" not in reason and len(reason) < 400, reason
    return code


def check_plays(mesh: Mesh, run: Run, directory: Path) -> None:
    """The READY output as a player uses it, against ffmpeg's decode of the source."""
    checker = OutputChecker(mesh, run.video_id, directory)
    master = checker.fetch(dag.MANIFEST).read_text()
    variants, media = clips.parse_master(master)
    assert variants, master
    for variant in variants:
        width, height = (int(x) for x in variant["RESOLUTION"].split("x"))
        rate = Fraction(variant["FRAME-RATE"]).limit_denominator(1001)
        playlist, init, files = checker.playlist(variant["URI"])
        frames = 0
        for (_, name), path in zip(playlist.segments, files, strict=True):
            decoded = clips.decode_video_segment(init, path)
            assert decoded, f"{variant['URI']}: {name} has no frame"
            assert decoded[0].key_frame, f"{variant['URI']}: {name} does not start with an IDR"
            for frame in decoded:
                assert (frame.width, frame.height) == (width, height), name
            frames += len(decoded)
        seconds = float(frames / rate)
        tolerance = DURATION_TOLERANCE + float(1 / rate)
        assert abs(seconds - run.reference.duration) <= tolerance, (
            f"{variant['URI']}: {frames} frames = {seconds:.3f} s, ffmpeg decodes "
            f"{run.reference.frames} frames = {run.reference.duration:.3f} s"
        )
        assert abs(sum(d for d, _ in playlist.segments) - seconds) < 0.01
    for group in media:
        playlist, init, files = checker.playlist(group["URI"])
        decoded = clips.decode_audio_track(init, files)
        assert decoded, "the audio rendition decodes"
        audio_seconds = sum(f.samples for f in decoded) / decoded[0].sample_rate
        # The audio lasts as long as the picture (silence fills a late or short track).
        assert audio_seconds <= run.reference.duration + 0.2, (audio_seconds, run.reference)
    poster = checker.fetch(dag.POSTER_FILE).read_bytes()
    with av.open(io.BytesIO(poster)) as container:
        assert next(container.decode(video=0)).width > 0


@pytest.mark.parametrize("name", [c.name for c in corpus.CASES])
async def test_streamify_agrees_with_the_ffmpeg_cli(corpus_runs, name, tmp_path):
    mesh, runs = corpus_runs
    run = runs[name]
    ref = run.reference
    context = (
        f"{name} ({run.case.mimics}): ffmpeg rc={ref.returncode}, {ref.frames} frames, "
        f"{ref.duration:.3f} s, stderr {ref.stderr[:300]!r}; Streamify "
        f"{describe(run.job)}"
    )

    if run.case.expect == "too_large":
        assert ref.plays, context  # ffmpeg reads it: the refusal is Streamify's policy
        assert run.job.state == FAILED, context
        assert check_reason(run.job.failure_reason) == Reason.TOO_LARGE, context
        assert "larger than the maximum 7680x4320" in run.job.failure_reason, context
    elif ref.plays:
        assert run.job.state == SUCCEEDED, f"{context}\n{mesh.worker_logs()}"
        assert run.video.status == VideoStatus.VIDEO_STATUS_READY, context
        check_plays(mesh, run, tmp_path / "out")
    else:
        assert run.job.state == FAILED, f"{context}\n{mesh.worker_logs()}"
        check_reason(run.job.failure_reason)
    if run.job.state == FAILED:
        assert run.video.status == VideoStatus.VIDEO_STATUS_FAILED, context
        assert run.video.failure_reason == run.job.failure_reason, context


async def test_corpus_covers_both_verdicts_of_the_reference(corpus_runs):
    """A corpus where ffmpeg accepts everything (or nothing) would test one side only."""
    _, runs = corpus_runs
    plays = [r.case.name for r in runs.values() if r.reference.plays]
    refused = [r.case.name for r in runs.values() if not r.reference.plays]
    assert len(plays) >= 25 and len(refused) >= 6, (plays, refused)
