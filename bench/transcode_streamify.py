"""Streamify's side of bench/transcode.py, run as its own process so that the parent can
measure its wall time, CPU-seconds (RUSAGE_CHILDREN) and the RSS of its process tree.

    python bench/transcode_streamify.py local  SOURCE OUT --workers N
    python bench/transcode_streamify.py dag    SOURCE OUT --workers N
    python bench/transcode_streamify.py stages SOURCE OUT

* ``local``: ``media.pipeline.transcode_local(SOURCE, OUT, workers=N)`` exactly as it is
  (chunks, then the poster, then the audio, in a spawn ProcessPoolExecutor of N processes).
* ``dag``: the orchestrator's plan and dispatch order (``dag.planned_tasks``: probe, then audio
  first, the chunks in order, the poster), each task in a FRESH spawned process as the real
  worker does (``worker_tasks``: one child per task), at most N at a time. No gRPC, no object
  storage: the source is a local file and the outputs stay on disk. Prints the end time of
  every task, so the parent can apply the orchestrator's first-playable rule
  (``dag.playable_run``: audio done and chunk 0 done).
* ``stages``: where the CPU goes, on chunk 0 only, single-threaded so every CPU-second is
  attributed exactly: decode (1 decoder thread), scale per rung (``VideoReformatter``,
  bicubic, as video_chunk does), x264 per rung (threads=1, same options as video_chunk), mux.
  Chunk 0 has no pre-roll, so the pre-roll of the later chunks (video_chunk.PREROLL_SECONDS
  on the rungs up to 720p) is not in these figures.

The last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from fractions import Fraction
from pathlib import Path


def _media():
    from streamify.transcode.media import ladder, pipeline

    return ladder, pipeline


# --- local: transcode_local as it is -----------------------------------------------------------


def run_local(source: str, out: Path, workers: int) -> dict:
    _, pipeline = _media()
    t0 = time.time()
    result = pipeline.transcode_local(source, out, workers=workers)
    return {
        "mode": "local",
        "workers": workers,
        "start": t0,
        "end": time.time(),
        "timings": result.timings,
        "chunks": len(result.chunks),
        "segments_in_chunk0": result.chunks[0].segment_count,
        "renditions": [
            {
                "id": r.rendition.id,
                "width": r.rendition.width,
                "height": r.rendition.height,
                "bitrate": r.rendition.bitrate,
                "codecs": r.codecs,
            }
            for r in result.renditions
        ],
    }


# --- dag: the orchestrator's order, one fresh process per task ---------------------------------


def _task_main(kind: str, args: tuple, kwargs: dict) -> None:
    from streamify.transcode.media.audio import encode_audio
    from streamify.transcode.media.poster import extract_poster
    from streamify.transcode.media.probe import probe
    from streamify.transcode.media.video_chunk import encode_video_chunk

    fn = {
        "probe": probe,
        "chunk": encode_video_chunk,
        "audio": encode_audio,
        "poster": extract_poster,
    }[kind]
    fn(*args, **kwargs)


def run_dag(source: str, out: Path, workers: int) -> dict:
    from streamify.core.config import TranscodeSettings
    from streamify.transcode.media.ladder import (
        plan_chunks,
        plan_duration,
        plan_frame_rate,
        plan_ladder,
        plan_poster_time,
        plan_ts_offset,
    )
    from streamify.transcode.media.probe import probe

    ctx = multiprocessing.get_context("spawn")
    opts = TranscodeSettings(orchestrator_id="bench")
    t0 = time.time()
    events: dict[str, float] = {}

    # The probe is a task of its own in the real system: a fresh process too.
    p = ctx.Process(target=_task_main, args=("probe", (source,), {}))
    p.start()
    p.join()
    if p.exitcode != 0:
        raise SystemExit(f"probe task failed ({p.exitcode})")
    events["probe"] = time.time()
    info = probe(source)  # the orchestrator gets this from the probe task's result
    renditions = plan_ladder(info, max_width=opts.max_width, max_height=opts.max_height)
    frame_rate = plan_frame_rate(info)
    ts_offset = plan_ts_offset(frame_rate)
    duration = plan_duration(info)
    chunks = plan_chunks(
        duration,
        opts.segment_seconds,
        opts.segments_per_chunk,
        frame_rate=frame_rate,
        first_chunk_segments=opts.first_chunk_segments,
    )
    rotation = info.video.rotation_degrees
    tasks: list[tuple[str, str, tuple, dict]] = []
    if info.audio is not None:  # dag.planned_tasks: audio first
        tasks.append(
            (
                "audio",
                "audio",
                (source, out / "audio"),
                dict(
                    segment_seconds=opts.segment_seconds,
                    bitrate=opts.audio_bitrate,
                    ts_offset=ts_offset,
                    duration=chunks[-1].end,
                ),
            )
        )
    for c in chunks:
        tasks.append(
            (
                f"chunk-{c.index:04d}",
                "chunk",
                (source, c, renditions, out),
                dict(
                    segment_seconds=opts.segment_seconds,
                    frame_rate=frame_rate,
                    rotation=rotation,
                    ts_offset=ts_offset,
                ),
            )
        )
    tasks.append(
        (
            "poster",
            "poster",
            (source, out / "poster.jpg"),
            dict(
                at_seconds=plan_poster_time(duration),
                max_width=opts.poster_max_width,
                rotation=rotation,
            ),
        )
    )

    running: dict[str, multiprocessing.process.BaseProcess] = {}
    pending = list(tasks)
    while pending or running:
        while pending and len(running) < workers:
            name, kind, a, kw = pending.pop(0)
            proc = ctx.Process(target=_task_main, args=(kind, a, kw), name=name)
            proc.start()
            running[name] = proc
        multiprocessing.connection.wait([pr.sentinel for pr in running.values()])
        for name, proc in list(running.items()):
            if proc.exitcode is not None:
                proc.join()
                if proc.exitcode != 0:
                    raise SystemExit(f"task {name} failed ({proc.exitcode})")
                events[name] = time.time()
                del running[name]
    end = time.time()
    playable = max(events.get("audio", t0), events["chunk-0000"])
    return {
        "mode": "dag",
        "workers": workers,
        "start": t0,
        "end": end,
        "events": {k: v - t0 for k, v in events.items()},
        "first_playable": playable - t0,
        "chunks": len(chunks),
        "segments_in_chunk0": chunks[0].segment_count,
    }


# --- stages: where the CPU goes, single-threaded -----------------------------------------------


def run_stages(source: str, out: Path, seconds: float) -> dict:
    import av
    from av.video.frame import PictureType
    from av.video.reformatter import Interpolation, VideoReformatter

    from streamify.transcode.media import grid, video_chunk
    from streamify.transcode.media.hls_output import HlsTarget, open_hls
    from streamify.transcode.media.ladder import plan_frame_rate, plan_ladder
    from streamify.transcode.media.probe import probe

    info = probe(source)
    renditions = plan_ladder(info)
    rate = grid.as_rate(plan_frame_rate(info))
    keyint = grid.frames_per_segment(4.0, rate)
    n_frames = int(seconds * rate)
    cpu = time.process_time
    rungs = []
    for r in renditions:
        output = open_hls(
            HlsTarget(out / r.id, "stage"), segment_seconds=4.0, start_number=0, ts_offset=1.0
        )
        stream = output.add_stream(
            "libx264",
            rate=rate,
            options={
                "preset": r.preset,
                "profile": r.profile,
                "g": str(keyint),
                "keyint_min": str(keyint),
                "sc_threshold": "0",
                "forced-idr": "1",
                "maxrate": str(r.max_bitrate),
                "bufsize": str(r.buffer_size),
                "x264-params": "open-gop=0"
                + (
                    f":ratetol={video_chunk.SMALL_RUNG_RATE_TOLERANCE}"
                    if r.width * r.height <= video_chunk.SMALL_RUNG_MAX_PIXELS
                    else ""
                ),
                "threads": "1",
            },
        )
        stream.width, stream.height, stream.pix_fmt = r.width, r.height, "yuv420p"
        stream.bit_rate = r.bitrate
        stream.time_base = Fraction(1) / rate
        rungs.append(
            {
                "r": r,
                "out": output,
                "stream": stream,
                "scaler": VideoReformatter(),
                "scale": 0.0,
                "encode": 0.0,
                "mux": 0.0,
            }
        )
    decode = 0.0
    n = 0
    with av.open(source) as container:
        vs = container.streams.video[0]
        vs.thread_type = "SLICE"
        vs.thread_count = 1
        it = container.decode(vs)
        while n < n_frames:
            c0 = cpu()
            try:
                frame = next(it)
            except StopIteration:
                break
            decode += cpu() - c0
            for s in rungs:
                r = s["r"]
                c0 = cpu()
                f = s["scaler"].reformat(
                    frame,
                    width=r.width,
                    height=r.height,
                    format="yuv420p",
                    interpolation=Interpolation.BICUBIC,
                )
                c1 = cpu()
                f.pts = n
                f.time_base = Fraction(1) / rate
                f.pict_type = PictureType.I if n % keyint == 0 else PictureType.NONE
                packets = s["stream"].encode(f)
                c2 = cpu()
                for pkt in packets:
                    s["out"].mux(pkt)
                c3 = cpu()
                s["scale"] += c1 - c0
                s["encode"] += c2 - c1
                s["mux"] += c3 - c2
            n += 1
    for s in rungs:
        c0 = cpu()
        packets = s["stream"].encode()
        c1 = cpu()
        for pkt in packets:
            s["out"].mux(pkt)
        s["out"].close()
        s["encode"] += c1 - c0
        s["mux"] += cpu() - c1
    return {
        "mode": "stages",
        "frames": n,
        "seconds": n / float(rate),
        "decode": decode,
        "rungs": [
            {
                "id": s["r"].id,
                "width": s["r"].width,
                "height": s["r"].height,
                "scale": s["scale"],
                "encode": s["encode"],
                "mux": s["mux"],
            }
            for s in rungs
        ],
        "total_cpu": cpu(),
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["local", "dag", "stages"])
    p.add_argument("source")
    p.add_argument("out", type=Path)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seconds", type=float, default=16.0, help="stages: seconds of video")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if a.mode == "local":
        result = run_local(a.source, a.out, a.workers)
    elif a.mode == "dag":
        result = run_dag(a.source, a.out, a.workers)
    else:
        result = run_stages(a.source, a.out, a.seconds)
    result["pid"] = os.getpid()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    import multiprocessing.connection

    sys.exit(main())
