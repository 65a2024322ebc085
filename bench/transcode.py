"""Transcode: Streamify's chunked HLS ladder versus ONE ffmpeg process making the same ladder.

    .venv/bin/python bench/transcode.py [--duration 60] [--reps 2] [--pattern testsrc2|noisy]
                                        [--source FILE] [--dag] [--stages] [--no-quality]

What it does (see docs/performance.md, "Transcode: 60 s 1080p ladder vs one ffmpeg process",
and recipes §6, §10, §11):

1. Makes the source with the ffmpeg CLI (printed): DURATION s of 1920x1080 30 fps ``testsrc2``
   (``--pattern noisy`` adds temporal noise, much harder to encode) + a 440 Hz sine, H.264 High
   CRF 18 (2 s GOP) + AAC 48 kHz stereo, faststart MP4; and its first half (``-c copy``) for
   the memory-flatness runs. ``--source FILE`` uses your file instead.
2. Plans the ladder exactly as Streamify does (``media.ladder.plan_ladder`` with
   ``DEFAULT_RUNGS``) and builds ONE ffmpeg command for it (printed): split -> scale per rung
   (bicubic, as Streamify's VideoReformatter) -> libx264 with the same preset, profile,
   bitrate/maxrate/bufsize, keyint = fps x 4 s, keyint_min, sc_threshold 0, closed GOP; AAC
   128k 48 kHz stereo; HLS fMP4, 4 s segments, VOD, master playlist.
3. Per rep, interleaved (the order rotates every rep), each variant as its own process tree:
   ``ffmpeg``; ``local-wN``: ``media.pipeline.transcode_local(..., workers=N)`` run by
   bench/transcode_streamify.py; with ``--dag`` also ``dag-w2``: the orchestrator's plan and
   dispatch order (audio first, chunks in order, poster), one fresh process per task as the
   real worker does, no gRPC and no object storage.
   Measured: wall time (process start to exit), CPU-seconds (RUSAGE_CHILDREN), CPU utilisation
   (CPU-s / wall / cores), RSS of the process tree sampled every 0.2 s (peak per task process
   and peak of the sum over task processes), and time to first playable:
     - ffmpeg: the first segment of every rendition and of the audio is finished (the
       muxer opened seg_00001; its VOD playlists are only written at the end);
     - Streamify: the orchestrator's rule (dag.playable_run): chunk 0 finished in every rung
       and the whole audio finished (files watched on disk).
4. Memory flatness: the same variants once on the half-length source.
5. Quality (rep 1 outputs): PSNR and SSIM of every rendition (init + segments concatenated)
   against the source scaled to the rung with the same bicubic scaler, ffmpeg's ``psnr`` and
   ``ssim`` filters; Streamify's chunked output next to ffmpeg's own at the same bitrate.
6. Prints the table (medians of the reps; ratios are medians of per-rep ratios) and the goals.

THE REAL SYSTEM: when `streamify serve transcode` and `streamify worker` exist (checked at
start), the Streamify rows are ``system w1`` / ``system w2`` (bench/transcode_system.py):
SeaweedFS + metadata + upload + transcode services as processes, N `streamify worker --slots 1`
per run, the source uploaded with `streamify upload`, wall = the job's create_time -> end_time
(READY), first playable = the job's time_to_first_playable. Otherwise (or with --no-system)
the rows are ``transcode_local`` (``--local`` adds them next to the system rows).

The ffmpeg CLI comes from Debian (``apt-get install -y ffmpeg``, run when missing). Exits 0
(it prints the goals, it does not assert them).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import ensure_command, log

from streamify.transcode.media.ladder import plan_frame_rate, plan_ladder
from streamify.transcode.media.probe import probe

HERE = Path(__file__).resolve().parent
PAGE = os.sysconf("SC_PAGE_SIZE")
SEGMENT = 4.0
CHUNK_SEGMENTS = 4  # TranscodeSettings.segments_per_chunk / transcode_local chunk_seconds=16
AUDIO_BITRATE = 128_000
POLL = 0.2
GOAL_WALL_RATIO = 1.0
GOAL_TTFP_SHARE = 0.15
GOAL_RSS_MB = 500
GOAL_PSNR_LOSS_DB = 0.1


# --- tools -------------------------------------------------------------------------------------


def system_status() -> str:
    """Whether `streamify serve transcode` and `streamify worker` exist yet."""
    exe = str(Path(sys.executable).parent / "streamify")
    try:
        top = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30).stdout
        serve = subprocess.run(
            [exe, "serve", "--help"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {exe}: {exc}"
    missing = []
    if "transcode" not in serve:
        missing.append("`streamify serve transcode`")
    if not re.search(r"\bworker\b", top):
        missing.append("`streamify worker`")
    if missing:
        return "not wired yet: " + " and ".join(missing) + " missing from the CLI"
    return "wired"


# --- source ------------------------------------------------------------------------------------


def make_source(ffmpeg: str, path: Path, duration: float, pattern: str) -> None:
    video = f"testsrc2=size=1920x1080:rate=30:duration={duration:g}"
    if pattern == "noisy":
        video += ",noise=alls=12:allf=t+u"
    cmd = [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        video,
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:sample_rate=48000:duration={duration:g}",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "18",
        "-g",
        "60",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "192k",
        "-ac",
        "2",
        "-movflags",
        "+faststart",
        str(path),
    ]
    log("$ " + shlex.join(cmd))
    t0 = time.monotonic()
    subprocess.run(cmd, check=True)
    log(f"  {path.stat().st_size / 1e6:.1f} MB in {time.monotonic() - t0:.1f} s")


def cut_source(ffmpeg: str, src: Path, dst: Path, seconds: float) -> None:
    cmd = [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(src),
        "-t",
        f"{seconds:g}",
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        str(dst),
    ]
    log("$ " + shlex.join(cmd))
    subprocess.run(cmd, check=True)


# --- the ffmpeg ladder -------------------------------------------------------------------------


def ffmpeg_ladder_cmd(ffmpeg: str, source: Path, out: Path, renditions, fps: float) -> list[str]:
    keyint = round(fps * SEGMENT)
    n = len(renditions)
    graph = (
        f"[0:v]split={n}"
        + "".join(f"[v{i}]" for i in range(n))
        + ";"
        + ";".join(
            f"[v{i}]scale={r.width}:{r.height}:flags=bicubic[o{i}]"
            for i, r in enumerate(renditions)
        )
    )
    cmd = [
        ffmpeg,
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(source),
        "-filter_complex",
        graph,
    ]
    for i in range(n):
        cmd += ["-map", f"[o{i}]"]
    cmd += ["-map", "0:a:0"]
    preset = renditions[0].preset
    cmd += [
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-pix_fmt",
        "yuv420p",
        "-r",
        f"{fps:g}",
        "-g",
        str(keyint),
        "-keyint_min",
        str(keyint),
        "-sc_threshold",
        "0",
        "-flags",
        "+cgop",
        "-x264-params",
        "open-gop=0",
    ]
    for i, r in enumerate(renditions):
        cmd += [
            f"-b:v:{i}",
            str(r.bitrate),
            f"-maxrate:v:{i}",
            str(r.max_bitrate),
            f"-bufsize:v:{i}",
            str(r.buffer_size),
            f"-profile:v:{i}",
            r.profile,
        ]
    cmd += ["-c:a", "aac", "-b:a", str(AUDIO_BITRATE), "-ar", "48000", "-ac", "2"]
    stream_map = " ".join(
        [f"v:{i},agroup:aud,name:{r.id}" for i, r in enumerate(renditions)]
        + ["a:0,agroup:aud,name:audio"]
    )
    cmd += [
        "-f",
        "hls",
        "-hls_time",
        f"{SEGMENT:g}",
        "-hls_playlist_type",
        "vod",
        "-hls_segment_type",
        "fmp4",
        "-hls_fmp4_init_filename",
        "init.mp4",
        "-hls_segment_filename",
        str(out / "%v" / "seg_%05d.m4s"),
        "-master_pl_name",
        "master.m3u8",
        "-var_stream_map",
        stream_map,
        str(out / "%v" / "index.m3u8"),
    ]
    return cmd


# --- process tree monitoring -------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Monitor(threading.Thread):
    """Samples the RSS of a process tree and watches for the first playable moment."""

    def __init__(self, roots: list[int], task_kind: str, ready) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        # "root": the roots are the task processes; "spawn": spawned children (multiprocessing);
        # "worker": the real worker's task children (python -m streamify.transcode.worker.tasks)
        self.task_kind = task_kind
        self.ready = ready
        self.t0 = time.monotonic()
        self.first_playable: float | None = None
        self.peak_task: dict[int, int] = {}  # task pid -> peak RSS
        self.peak_task_sum = 0
        self.peak_tree = 0
        self.stop_flag = threading.Event()
        self._cmd: dict[int, str] = {}

    def _is_task(self, pid: int) -> bool:
        if self.task_kind == "root":
            return pid in self.roots
        if pid not in self._cmd:
            self._cmd[pid] = _cmdline(pid)
        return ("spawn_main" if self.task_kind == "spawn" else "worker_tasks") in self._cmd[pid]

    def run(self) -> None:
        while not self.stop_flag.is_set():
            self.sample()
            self.stop_flag.wait(POLL)

    def sample(self) -> None:
        pids, todo = [], list(self.roots)
        while todo:
            p = todo.pop()
            pids.append(p)
            todo += _children(p)
        tree = task_sum = 0
        for p in pids:
            rss = _rss(p)
            tree += rss
            if self._is_task(p):
                task_sum += rss
                self.peak_task[p] = max(self.peak_task.get(p, 0), rss)
        self.peak_tree = max(self.peak_tree, tree)
        self.peak_task_sum = max(self.peak_task_sum, task_sum)
        if self.first_playable is None and self.ready is not None:
            try:
                ok = self.ready()
            except OSError:
                ok = False
            if ok:
                self.first_playable = time.monotonic() - self.t0


def ffmpeg_ready(out: Path, rendition_ids: list[str]):
    """The first segment of every rendition and of the audio is finished: the muxer has
    opened the second one (a VOD playlist is only written at the end, so it cannot tell)."""

    def check() -> bool:
        return all((out / rid / "seg_00001.m4s").exists() for rid in [*rendition_ids, "audio"])

    return check


def streamify_ready(out: Path, rendition_ids: list[str]):
    """dag.playable_run: chunk 0 finished in every rung (its segment 0 exists and its private
    init was renamed by finish_hls) and the audio finished (its init.mp4 exists)."""

    def check() -> bool:
        if not (out / "audio" / "init.mp4").exists():
            return False
        for rid in rendition_ids:
            d = out / rid
            if not (d / "seg_00000.m4s").exists() or (d / ".c00000.init.mp4").exists():
                return False
        return True

    return check


# --- runs --------------------------------------------------------------------------------------


@dataclass
class Result:
    wall: float
    cpu: float
    first_playable: float | None
    peak_task: int  # max over task processes
    peak_task_sum: int
    peak_tree: int
    tasks: int
    extra: dict = field(default_factory=dict)


@dataclass
class Variant:
    label: str
    kind: str  # ffmpeg | local | dag
    workers: int = 1
    results: list[Result] = field(default_factory=list)
    flat: Result | None = None


def cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_variant(
    v: Variant, ffmpeg: str, source: Path, out: Path, renditions, fps: float, show: bool
) -> Result:
    ids = [r.id for r in renditions]
    if v.kind == "ffmpeg":
        for rid in [*ids, "audio"]:
            (out / rid).mkdir(parents=True, exist_ok=True)
        cmd = ffmpeg_ladder_cmd(ffmpeg, source, out, renditions, fps)
        ready, task_kind = ffmpeg_ready(out, ids), "root"
    else:
        cmd = [
            sys.executable,
            str(HERE / "transcode_streamify.py"),
            v.kind,
            str(source),
            str(out),
            "--workers",
            str(v.workers),
        ]
        ready = streamify_ready(out, ids)
        task_kind = "root" if (v.kind == "local" and v.workers == 1) else "spawn"
    if show:
        log("$ " + shlex.join(cmd))
    c0 = cpu_children()
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    mon = Monitor([proc.pid], task_kind, ready)
    mon.t0 = t0
    mon.start()
    stdout, _ = proc.communicate()
    wall = time.monotonic() - t0
    mon.stop_flag.set()
    mon.join()
    cpu = cpu_children() - c0
    if proc.returncode != 0:
        raise RuntimeError(f"{v.label} failed with {proc.returncode}:\n{stdout[-2000:]}")
    extra = {}
    if v.kind != "ffmpeg":
        extra = json.loads(stdout.strip().splitlines()[-1])
    first = mon.first_playable
    if first is None and ready():
        first = wall  # only became true at the very end
    return Result(
        wall,
        cpu,
        first,
        max(mon.peak_task.values(), default=0),
        mon.peak_task_sum,
        mon.peak_tree,
        len(mon.peak_task),
        extra,
    )


def run_system(v: Variant, system, source: Path, out: Path | None, show: bool) -> Result:
    """The real path: N `streamify worker` processes, upload, job until READY."""
    from transcode_system import proc_cpu, stop

    workers = system.start_workers(v.workers, show)
    try:
        time.sleep(3.0)  # interpreter start + Connect + welcome; the job's clock starts later
        for w in workers:
            if w.poll() is not None:
                raise RuntimeError(f"worker exited with {w.returncode} (see {system.logs})")
        c0 = cpu_children()
        o0 = sum(proc_cpu(pid) for pid in system.other_pids())
        mon = Monitor([w.pid for w in workers], "worker", None)
        mon.start()
        video_id, upload_s = system.upload(source, show)
        job = system.wait_job(video_id)
        mon.stop_flag.set()
        mon.join()
        o1 = sum(proc_cpu(pid) for pid in system.other_pids())
    finally:
        for w in workers:
            stop(w)
    cpu = cpu_children() - c0
    from transcode_system import tapi

    state = tapi.JobState.Name(job.state)
    if job.state != tapi.JOB_STATE_SUCCEEDED:
        raise RuntimeError(f"{v.label}: job {video_id} ended {state}: {job.failure_reason}")
    wall = (job.end_time.ToNanoseconds() - job.create_time.ToNanoseconds()) / 1e9
    first = job.time_to_first_playable.ToNanoseconds() / 1e9 or None
    if out is not None:
        system.download(video_id, out)
    system.delete(video_id)
    return Result(
        wall,
        cpu + (o1 - o0),
        first,
        max(mon.peak_task.values(), default=0),
        mon.peak_task_sum,
        mon.peak_tree,
        len(mon.peak_task),
        {"worker_cpu": cpu, "other_cpu": o1 - o0, "upload_s": upload_s, "tasks": job.total_tasks},
    )


# --- quality -----------------------------------------------------------------------------------


def concat_rendition(d: Path, dst: Path) -> None:
    inits = sorted(d.glob("init*.mp4"))
    segs = sorted(d.glob("seg_*.m4s"))
    if len(inits) != 1 or not segs:
        raise RuntimeError(f"{d}: expected one init segment and segments, got {inits} {len(segs)}")
    with open(dst, "wb") as f:
        for p in [inits[0], *segs]:
            f.write(p.read_bytes())


def quality(ffmpeg: str, rendition_mp4: Path, source: Path, w: int, h: int) -> dict:
    graph = (
        "[0:v]settb=1/30,setpts=N,split[d0][d1];"  # pair frames by index, not by timestamp
        f"[1:v]scale={w}:{h}:flags=bicubic,settb=1/30,setpts=N,split[r0][r1];"
        "[d0][r0]psnr=eof_action=endall[p];[d1][r1]ssim=eof_action=endall[s]"
    )
    cmd = [
        ffmpeg,
        "-hide_banner",
        "-nostats",
        "-i",
        str(rendition_mp4),
        "-i",
        str(source),
        "-lavfi",
        graph,
        "-map",
        "[p]",
        "-f",
        "null",
        "-",
        "-map",
        "[s]",
        "-f",
        "null",
        "-",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"quality failed: {shlex.join(cmd)}\n{p.stderr[-2000:]}")
    psnr = re.search(r"PSNR y:([\d.]+) u:([\d.]+) v:([\d.]+) average:([\d.]+)", p.stderr)
    ssim = re.search(r"SSIM Y:([\d.]+) .*All:([\d.]+)", p.stderr)
    if not psnr or not ssim:
        raise RuntimeError(f"cannot parse psnr/ssim:\n{p.stderr[-2000:]}")
    frames = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
            str(rendition_mp4),
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "psnr_y": float(psnr.group(1)),
        "psnr": float(psnr.group(4)),
        "ssim_y": float(ssim.group(1)),
        "ssim": float(ssim.group(2)),
        "frames": int(frames or 0),
        "bytes": rendition_mp4.stat().st_size,
        "cmd": cmd,
    }


# --- main --------------------------------------------------------------------------------------


def mb(b: float) -> str:
    return f"{b / 1e6:.0f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=60, help="seconds of generated source")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--pattern", choices=["testsrc2", "noisy"], default="testsrc2")
    p.add_argument("--source", type=Path, help="use this file instead of a generated one")
    p.add_argument("--workers", default="1,2", help="transcode_local worker counts")
    p.add_argument(
        "--dag",
        action="store_true",
        help="also the orchestrator's task order, one process per task, 2 at a time",
    )
    p.add_argument(
        "--stages",
        action="store_true",
        help="also a single-threaded CPU breakdown of chunk 0 (decode/scale/x264/mux)",
    )
    p.add_argument(
        "--local",
        action="store_true",
        help="with the real system wired: also transcode_local (--workers)",
    )
    p.add_argument("--no-system", action="store_true", help="do not start the real system")
    p.add_argument("--no-quality", action="store_true")
    p.add_argument("--no-flat", action="store_true", help="skip the half-length memory runs")
    p.add_argument("--keep", type=Path, help="keep rep-1 outputs here (default: all deleted)")
    args = p.parse_args(argv)

    ffmpeg = ensure_command("ffmpeg", "ffmpeg")
    cores = len(os.sched_getaffinity(0))
    version = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True).stdout
    import av

    log(
        f"machine: {os.cpu_count()} CPUs ({cores} usable), load average "
        f"{os.getloadavg()[0]:.2f}; {version.splitlines()[0]}; PyAV {av.__version__} "
        f"(libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))})"
    )
    status = system_status()
    log(f"real system (orchestrator + workers): {status}")
    if status != "wired":
        log(
            "  -> the Streamify rows are media.pipeline.transcode_local"
            + (" and the --dag emulation" if args.dag else "")
            + ", NOT the real system"
        )

    variants = [Variant("ffmpeg (1 process)", "ffmpeg")]
    wired = status == "wired" and not args.no_system
    if wired:
        variants += [Variant(f"system w{w}", "system", w) for w in (1, 2)]
    if not wired or args.local:
        for w in (int(x) for x in args.workers.split(",") if x):
            variants.append(Variant(f"local w{w}", "local", w))
    if args.dag:
        variants.append(Variant("dag w2", "dag", 2))

    with tempfile.TemporaryDirectory(prefix="bench-transcode-") as tmp_s:
        systems: list = []  # the real system, once started: stopped whatever happens
        try:
            return _body(args, variants, ffmpeg, cores, status, Path(tmp_s), systems)
        finally:
            for system in systems:
                log("stopping the system (SeaweedFS takes up to ~30 s)")
                system.stop()


def _body(args, variants, ffmpeg, cores, status, tmp: Path, systems: list) -> int:
    system = None
    if any(v.kind == "system" for v in variants):
        sys.path.insert(0, str(HERE))
        from transcode_system import System

        system = System(tmp / "system")
        systems.append(system)
        system.start()
    if args.source:
        source = args.source.resolve()
    else:
        source = tmp / f"source-{args.pattern}-{args.duration:g}s.mp4"
        make_source(ffmpeg, source, args.duration, args.pattern)
    info = probe(str(source))
    duration = info.duration
    renditions = plan_ladder(info)
    fps = plan_frame_rate(info)
    log(
        f"source: {source.name}, {info.video.width}x{info.video.height} {fps:g} fps, "
        f"{duration:.2f} s, {source.stat().st_size / 1e6:.1f} MB; ladder "
        + ", ".join(
            f"{r.id} {r.width}x{r.height} {r.bitrate // 1000}k {r.profile}" for r in renditions
        )
    )

    keep = {}
    for rep in range(args.reps):
        k = rep % len(variants)
        order = variants[k:] + variants[:k]
        log(
            f"rep {rep + 1}/{args.reps}: order {', '.join(v.label for v in order)} "
            f"(load {os.getloadavg()[0]:.2f})"
        )
        for v in order:
            out = tmp / f"out-{v.kind}-{v.workers}-{rep}"
            if v.kind == "system":
                r = run_system(v, system, source, out, show=rep == 0)
            else:
                r = run_variant(v, ffmpeg, source, out, renditions, fps, show=rep == 0)
            v.results.append(r)
            fp = f"{r.first_playable:.1f}" if r.first_playable is not None else "?"
            log(
                f"  {v.label:<19} wall {r.wall:6.1f} s  CPU {r.cpu:6.1f} s "
                f"({r.cpu / r.wall / cores:4.0%})  first playable {fp:>5} s  "
                f"RSS task max {mb(r.peak_task)} MB, tasks sum {mb(r.peak_task_sum)} MB, "
                f"tree {mb(r.peak_tree)} MB ({r.tasks} task proc)"
            )
            if rep == 0 and (v.kind == "ffmpeg" or (v.kind != "dag" and "streamify" not in keep)):
                keep["ffmpeg" if v.kind == "ffmpeg" else "streamify"] = out
            else:
                shutil.rmtree(out, ignore_errors=True)

    if not args.no_flat:
        half = tmp / "source-half.mp4"
        cut_source(ffmpeg, source, half, round(duration / 2))
        log(f"memory flatness: every variant once on the first {round(duration / 2)} s")
        for v in variants:
            out = tmp / f"flat-{v.kind}-{v.workers}"
            if v.kind == "system":
                v.flat = run_system(v, system, half, None, show=False)
            else:
                v.flat = run_variant(v, ffmpeg, half, out, renditions, fps, show=False)
            log(
                f"  {v.label:<19} wall {v.flat.wall:6.1f} s  RSS task max "
                f"{mb(v.flat.peak_task)} MB, tasks sum {mb(v.flat.peak_task_sum)} MB"
            )
            shutil.rmtree(out, ignore_errors=True)

    stages = None
    if args.stages:
        log("stages: chunk 0, single-threaded (decoder 1 thread, x264 threads=1)")
        cmd = [
            sys.executable,
            str(HERE / "transcode_streamify.py"),
            "stages",
            str(source),
            str(tmp / "stages"),
            "--seconds",
            f"{min(16.0, duration):g}",
        ]
        log("$ " + shlex.join(cmd))
        stages = json.loads(
            subprocess.run(cmd, capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )

    qual: dict[str, dict[str, dict]] = {}
    if not args.no_quality and keep:
        log("quality: PSNR/SSIM of every rendition vs the source scaled to the rung (bicubic)")
        jobs = {}
        with cf.ThreadPoolExecutor(max_workers=cores) as pool:
            for who, out in keep.items():
                for r in renditions:
                    mp4 = tmp / f"q-{who}-{r.id}.mp4"
                    concat_rendition(out / r.id, mp4)
                    jobs[(who, r.id)] = pool.submit(quality, ffmpeg, mp4, source, r.width, r.height)
            for (who, rid), fut in jobs.items():
                qual.setdefault(who, {})[rid] = fut.result()
        first = next(iter(qual.values()))[renditions[0].id]
        log("$ " + shlex.join(first["cmd"]).replace(str(tmp) + "/", ""))
    if args.keep:
        for who, out in keep.items():
            shutil.copytree(out, args.keep / who, dirs_exist_ok=True)

    # --- report ------------------------------------------------------------------------------
    med = statistics.median
    ff = variants[0]
    log("")
    log(
        f"Transcode, {duration:.0f} s 1080p30 {args.pattern if not args.source else source.name}, "
        f"{args.reps} reps (medians; ratios = median of per-rep ratios), {cores} cores"
    )
    head = (
        f"{'variant':<20}{'wall s':>8}{'x ffmpeg':>9}{'CPU-s':>8}{'CPU %':>7}"
        f"{'1st play s':>11}{'% of ff':>8}{'task RSS MB':>12}{'sum MB':>8}"
        f"{'half: task MB':>14}"
    )
    log(head)
    log("-" * len(head))
    for v in variants:
        walls = [r.wall for r in v.results]
        ratio = med([a.wall / b.wall for a, b in zip(v.results, ff.results, strict=True)])
        fps_ = [r.first_playable for r in v.results if r.first_playable is not None]
        share = med(
            [
                a.first_playable / b.wall
                for a, b in zip(v.results, ff.results, strict=True)
                if a.first_playable is not None
            ]
        )
        cpu = med([r.cpu for r in v.results])
        util = med([r.cpu / r.wall / cores for r in v.results])
        flat = mb(v.flat.peak_task) if v.flat else "-"
        log(
            f"{v.label:<20}{med(walls):>8.1f}{ratio:>9.2f}{cpu:>8.1f}{util:>7.0%}"
            f"{med(fps_):>11.1f}{share:>8.0%}{mb(max(r.peak_task for r in v.results)):>12}"
            f"{mb(max(r.peak_task_sum for r in v.results)):>8}{flat:>14}"
        )
    log(
        "(1st play: ffmpeg = first segment of every rendition and the audio finished; Streamify"
        " = the job's time_to_first_playable (system) or chunk 0 of every rung + whole audio done. task RSS = peak of one task process; sum ="
        " peak of the sum over task processes)"
    )

    if stages:
        log("")
        log(
            f"CPU-seconds by stage, chunk 0 ({stages['seconds']:g} s, {stages['frames']} frames), "
            f"single-threaded: decode {stages['decode']:.2f}"
        )
        tot_s = sum(r["scale"] for r in stages["rungs"])
        tot_e = sum(r["encode"] for r in stages["rungs"])
        tot_m = sum(r["mux"] for r in stages["rungs"])
        for r in stages["rungs"]:
            log(
                f"  {r['id']:<6} scale {r['scale']:6.2f}  x264 {r['encode']:6.2f}  "
                f"mux {r['mux']:5.2f}"
            )
        total = stages["decode"] + tot_s + tot_e + tot_m
        log(
            f"  total  scale {tot_s:6.2f} ({tot_s / total:.0%})  x264 {tot_e:6.2f} "
            f"({tot_e / total:.0%})  mux {tot_m:5.2f}  decode {stages['decode'] / total:.0%}; "
            f"process CPU {stages['total_cpu']:.2f}"
        )

    if qual:
        log("")
        log(
            f"{'rung':<7}{'size':>10}{'kbit/s':>7} | {'ffmpeg: PSNR-Y':>14}{'PSNR':>7}{'SSIM-Y':>8}"
            f"{'kbit/s':>7} | {'streamify: PSNR-Y':>17}{'PSNR':>7}{'SSIM-Y':>8}{'kbit/s':>7} | "
            f"{'ΔPSNR-Y':>8}{'ΔPSNR':>7}{'frames':>11}"
        )
        worst = 0.0
        for r in renditions:
            a, b = qual.get("ffmpeg", {}).get(r.id), qual.get("streamify", {}).get(r.id)
            if not a or not b:
                continue
            d = b["psnr_y"] - a["psnr_y"]
            worst = min(worst, d)
            log(
                f"{r.id:<7}{f'{r.width}x{r.height}':>10}{r.bitrate // 1000:>7} | "
                f"{a['psnr_y']:>14.2f}{a['psnr']:>7.2f}{a['ssim_y']:>8.4f}"
                f"{a['bytes'] * 8 / duration / 1000:>7.0f} | "
                f"{b['psnr_y']:>17.2f}{b['psnr']:>7.2f}{b['ssim_y']:>8.4f}"
                f"{b['bytes'] * 8 / duration / 1000:>7.0f} | "
                f"{d:>+8.2f}{b['psnr'] - a['psnr']:>+7.2f}"
                f"{str(a['frames']) + '/' + str(b['frames']):>11}"
            )
        log(
            "(reference = the source through ffmpeg's scale filter, bicubic. PSNR = ffmpeg's "
            "'average' over Y/U/V. Luma from PyAV's VideoReformatter is bit-identical to ffmpeg's "
            "scale, chroma is not (chroma siting), so PSNR-Y isolates the cost of chunked "
            "encoding; kbit/s = init + segments; frames ffmpeg/streamify)"
        )

    log("")
    for v in variants[1:]:
        ratio = med([a.wall / b.wall for a, b in zip(v.results, ff.results, strict=True)])
        log(
            f"goal {v.label}: wall <= {GOAL_WALL_RATIO:.1f}x ffmpeg -> {ratio:.2f}x "
            f"({'met' if ratio <= GOAL_WALL_RATIO else 'NOT met'})"
        )
        share = med(
            [
                a.first_playable / b.wall
                for a, b in zip(v.results, ff.results, strict=True)
                if a.first_playable is not None
            ]
        )
        log(
            f"goal {v.label}: first playable <= {GOAL_TTFP_SHARE:.0%} of ffmpeg's total -> "
            f"{share:.0%} ({'met' if share <= GOAL_TTFP_SHARE else 'NOT met'})"
        )
        peak = max(r.peak_task for r in v.results)
        flat = f", half-length {mb(v.flat.peak_task)} MB" if v.flat else ""
        log(
            f"goal {v.label}: task RSS <= {GOAL_RSS_MB} MB and flat -> {mb(peak)} MB{flat} "
            f"({'met' if peak <= GOAL_RSS_MB * 1e6 else 'NOT met'})"
        )
    if qual:
        log(
            f"goal: chunked encoding costs <= {GOAL_PSNR_LOSS_DB} dB PSNR-Y per rung -> worst "
            f"{worst:+.2f} dB ({'met' if worst >= -GOAL_PSNR_LOSS_DB else 'NOT met'})"
        )
    kinds = sorted({v.kind for v in variants[1:]})
    log(
        f"real system: {status}; Streamify rows: "
        + ", ".join(
            {
                "system": "system = real orchestrator + `streamify worker` processes, "
                "upload via SeaweedFS, wall = job create -> READY",
                "local": "local = media.pipeline.transcode_local",
                "dag": "dag = orchestrator order emulated, no gRPC/storage",
            }[k]
            for k in kinds
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
