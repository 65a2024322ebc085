"""Cached GetVideo: the real Metadata service versus bare grpcio servers of the same shape.

    .venv/bin/python bench/metadata.py [--duration 10] [--reps 3] [-c 32] [-m 4]

What it does (see docs/performance.md, "Metadata: cached GetVideo", and recipes §11):

1. Starts `streamify serve metadata` (temp data dir + SQLite, fixed JWT secret, log level
   WARNING, in-process cache, metrics on a free port), creates one video over gRPC with a user
   token and reads it twice (the second read is a cache hit).
2. Starts `bench/echo_server.py` twice, `grpc.aio` (same flavour as the service) and sync
   `grpc.server`: same method, answering with the exact bytes the service returned, built once.
3. Per rep, interleaved (the order rotates every rep): a peak-throughput h2load run against
   each server, then a rate-limited run at 50% of that server's peak of this rep for p50/p99
   (exact, from h2load's --log-file). Same client, headers, body and concurrency for all.
   Servers are pinned to core 0 and h2load to core 1 (--no-pin to turn off).
4. Checks every call succeeded: a grpcio GetVideo before and after; per h2load run no failed
   or non-2xx requests and at least (5 + len(video)) DATA bytes per success (a gRPC error is a
   trailers-only 200 with no DATA); for the service also its own `streamify_rpc_requests_total`
   counter (code != OK must stay 0).
5. Prints the table: median of reps, and the median of per-rep ratios streamify/echo.

h2load comes from Debian's nghttp2-client; installed with apt-get when missing. Exits 0 (it
prints the goals, it does not assert them).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from common import cpu_seconds, ensure_command, free_port, log, stop_process, wait_ready

from streamify.v1 import metadata_service_pb2 as api
from streamify.v1 import metadata_service_pb2_grpc
from streamify.v1.video_pb2 import Video, Visibility
from tests.support import keys

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
METHOD = "/streamify.v1.MetadataService/GetVideo"
GOAL_RATIO = 0.70
GOAL_P99_MS = 5.0


# --- tools -------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


# --- servers -----------------------------------------------------------------------------------


@dataclass
class Server:
    label: str
    port: int
    proc: subprocess.Popen
    metrics_port: int = 0
    peak: list[float] = field(default_factory=list)  # rps per rep
    cpu_us: list[float] = field(default_factory=list)  # server CPU µs per request, peak runs
    cpu_s: list[float] = field(default_factory=list)  # server CPU-seconds, peak runs
    p50: list[float] = field(default_factory=list)  # ms, half-load runs
    p99: list[float] = field(default_factory=list)
    half_rps: list[float] = field(default_factory=list)  # achieved rps, half-load runs

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc, 10)


def pinned(cmd: list[str], core: int | None) -> list[str]:
    return ["taskset", "-c", str(core), *cmd] if core is not None else cmd


def start_streamify(data_dir: Path, core: int | None, redis_url: str | None) -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
    port, metrics_port = free_port(), free_port()
    env.update(
        STREAMIFY_DATA_DIR=str(data_dir),
        **keys.SECRET_ENV,
        STREAMIFY_LOG_LEVEL="WARNING",
        STREAMIFY_GRPC_HOST="127.0.0.1",
        STREAMIFY_METRICS_PORT=str(metrics_port),
    )
    if redis_url:
        env["STREAMIFY_REDIS_URL"] = redis_url
    cmd = pinned([str(BIN / "streamify"), "serve", "metadata", "--port", str(port)], core)
    log(
        f"$ STREAMIFY_DATA_DIR={data_dir} STREAMIFY_TRUSTED_KEYS=... STREAMIFY_LOG_LEVEL=WARNING "
        f"STREAMIFY_METRICS_PORT={metrics_port}{' STREAMIFY_REDIS_URL=' + redis_url if redis_url else ''} "
        f"{' '.join(cmd)}"
    )
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
    server = Server("streamify", port, proc, metrics_port=metrics_port)
    try:
        wait_ready(server.target, proc)
    except Exception:
        server.stop()
        raise
    return server


def start_echo(flavour: str, response_file: Path, core: int | None) -> Server:
    port = free_port()
    cmd = pinned(
        [
            sys.executable,
            str(HERE / "echo_server.py"),
            "--flavour",
            flavour,
            "--port",
            str(port),
            "--response-file",
            str(response_file),
        ],
        core,
    )
    log(f"$ {' '.join(cmd)}")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    server = Server(f"echo-{flavour}", port, proc)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("READY"):
            raise RuntimeError(f"echo server ({flavour}) did not start: {line!r}")
        wait_ready(server.target, proc)
    except Exception:
        server.stop()
        raise
    return server


def non_ok_calls(server: Server) -> dict[str, float] | None:
    """GetVideo calls by code != OK from the service's own metrics (None if unavailable)."""
    if not server.metrics_port:
        return None
    try:
        text = (
            urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5)
            .read()
            .decode()
        )
    except OSError:
        return None
    out: dict[str, float] = {}
    for m in re.finditer(r"^streamify_rpc_requests_total\{([^}]*)\} (\S+)$", text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("method") == "GetVideo":
            out[labels.get("code", "?")] = float(m.group(2))
    return out


# --- h2load ------------------------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    done: int
    succeeded: int
    failed: int
    non_2xx: int
    data_bytes: int
    cpu_s: float
    durations_us: list[int]


def run_h2load(
    h2load: str,
    server: Server,
    body: Path,
    headers: list[str],
    *,
    clients: int,
    streams: int,
    duration: float,
    warmup: float,
    core: int | None,
    rps_per_client: float | None = None,
    log_file: Path | None = None,
    show: bool = False,
) -> Load:
    cmd = [
        h2load,
        "-t",
        "1",
        "-c",
        str(clients),
        "-m",
        str(streams),
        "-D",
        f"{round(duration * 1000)}ms",
        "--warm-up-time",
        f"{round(warmup * 1000)}ms",
        "-d",
        str(body),
    ]
    for h in headers:
        cmd += ["-H", h]
    if rps_per_client is not None:
        cmd += ["--rps", f"{rps_per_client:.3f}"]
    if log_file is not None:
        log_file.unlink(missing_ok=True)  # --log-file appends
        cmd += ["--log-file", str(log_file)]
    cmd = pinned(cmd + [f"http://{server.target}{METHOD}"], core)
    if show:
        log("$ " + shlex.join(cmd).replace(headers[-1], "authorization: Bearer $TOKEN"))
    # Server CPU over the measured window only: sample after warm-up and at its end.
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(max(0.0, t0 + warmup - time.monotonic()))
    c0 = cpu_seconds(server.proc.pid)
    time.sleep(max(0.0, t0 + warmup + duration - time.monotonic()))
    c1 = cpu_seconds(server.proc.pid)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"h2load failed ({proc.returncode}):\n{out}")

    def grab(pattern: str) -> re.Match:
        m = re.search(pattern, out, re.M)
        if not m:
            raise RuntimeError(f"cannot parse h2load output ({pattern}):\n{out}")
        return m

    rps = float(grab(r"^finished in .*?, ([\d.]+) req/s").group(1))
    req = grab(
        r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout"
    )
    codes = grab(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
    data = int(grab(r"^traffic: .*?, [\d.]+\w* \((\d+)\) data").group(1))
    durations: list[int] = []
    if log_file is not None and log_file.exists():
        for line in log_file.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1] == "200":
                durations.append(int(parts[2]))
    return Load(
        rps=rps,
        done=int(req.group(3)),
        succeeded=int(req.group(4)),
        failed=int(req.group(5)) + int(req.group(6)) + int(req.group(7)),
        non_2xx=sum(int(x) for x in codes.groups()[1:]),
        data_bytes=data,
        cpu_s=c1 - c0,
        durations_us=durations,
    )


def check_load(server: Server, load: Load, min_body: int, what: str) -> None:
    problems = []
    if load.failed or load.non_2xx:
        problems.append(f"{load.failed} failed/errored/timeout, {load.non_2xx} non-2xx")
    if load.succeeded and load.data_bytes < load.succeeded * min_body:
        problems.append(
            f"only {load.data_bytes / load.succeeded:.0f} DATA bytes per success "
            f"(< {min_body}): some calls ended with a gRPC error"
        )
    if problems:
        log(f"  WARNING {server.label} {what}: " + "; ".join(problems))


# --- grpcio client (setup and verification only, never for load) ------------------------------


def get_video(target: str, name: str, md: list[tuple[str, str]]) -> Video:
    with grpc.insecure_channel(target) as ch:
        return metadata_service_pb2_grpc.MetadataServiceStub(ch).GetVideo(
            api.GetVideoRequest(name=name), metadata=md, timeout=10
        )


def verify(
    servers: list[Server], name: str, md: list[tuple[str, str]], expected: bytes, when: str
) -> None:
    for s in servers:
        try:
            got = get_video(s.target, name, md).SerializeToString()
            status = "OK, same bytes" if got == expected else "OK but DIFFERENT bytes"
        except grpc.RpcError as exc:
            status = f"FAILED {exc.code().name}: {exc.details()}"
        extra = ""
        counts = non_ok_calls(s)
        if counts is not None:
            bad = {k: v for k, v in counts.items() if k != "OK"}
            extra = f"; server counter GetVideo OK={counts.get('OK', 0):.0f}, not OK={bad or 0}"
        log(f"  {when}: {s.label:<10} grpcio GetVideo -> {status}{extra}")


# --- main --------------------------------------------------------------------------------------


def fmt_ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=10, help="measured seconds per h2load run")
    p.add_argument("--warmup", type=float, default=2, help="h2load warm-up seconds per run")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("-c", "--clients", type=int, default=32, help="h2load connections")
    p.add_argument(
        "-m", "--streams", type=int, default=4, help="h2load max concurrent streams per connection"
    )
    p.add_argument(
        "--lat-clients",
        type=int,
        default=4,
        help="h2load connections for the half-load runs (default 4: h2load's per-connection "
        "--rps timers start aligned, so 32 connections arrive in bursts of 32)",
    )
    p.add_argument(
        "--lat-streams", type=int, default=32, help="max streams per connection, half-load runs"
    )
    p.add_argument(
        "--no-pin", action="store_true", help="do not pin servers to core 0 / h2load to core 1"
    )
    p.add_argument(
        "--no-sync", action="store_true", help="skip the sync grpc.server echo reference"
    )
    p.add_argument(
        "--redis-url", help="run the service with this Redis cache instead of the in-process one"
    )
    args = p.parse_args(argv)

    h2load = ensure_command("h2load", "nghttp2-client")
    ncpu = len(os.sched_getaffinity(0))
    pin = not args.no_pin and ncpu >= 2 and shutil.which("taskset") is not None
    server_core, load_core = (0, 1) if pin else (None, None)
    log(
        f"machine: {os.cpu_count()} CPUs ({ncpu} usable), load average {os.getloadavg()[0]:.2f}; "
        f"pinning: {'servers on core 0, h2load on core 1' if pin else 'off'}"
    )

    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="bench-metadata-") as tmp_str:
        tmp = Path(tmp_str)
        try:
            streamify = start_streamify(tmp / "data", server_core, args.redis_url)
            servers.append(streamify)
            token = keys.token("alice", ttl=24 * 3600)
            md = [("authorization", f"Bearer {token}")]
            with grpc.insecure_channel(streamify.target) as ch:
                stub = metadata_service_pb2_grpc.MetadataServiceStub(ch)
                created = stub.CreateVideo(
                    api.CreateVideoRequest(
                        video=Video(
                            title="Benchmark video",
                            description="A video created by bench/metadata.py to measure cached GetVideo.",
                            visibility=Visibility.VISIBILITY_PUBLIC,
                        )
                    ),
                    metadata=md,
                    timeout=10,
                )
            name = created.name
            get_video(streamify.target, name, md)  # miss: loads into the cache
            video_bytes = get_video(streamify.target, name, md).SerializeToString()  # hit
            response_file = tmp / "video.bin"
            response_file.write_bytes(video_bytes)
            request = api.GetVideoRequest(name=name).SerializeToString()
            body = tmp / "request.bin"
            body.write_bytes(b"\x00" + len(request).to_bytes(4, "big") + request)
            log(
                f"video {name}: response {len(video_bytes)} bytes, request frame {5 + len(request)} bytes"
            )

            servers.append(start_echo("aio", response_file, server_core))
            if not args.no_sync:
                servers.append(start_echo("sync", response_file, server_core))
            verify(servers, name, md, video_bytes, "before")

            headers = [
                "content-type: application/grpc",
                "te: trailers",
                f"authorization: Bearer {token}",
            ]
            min_body = 5 + len(video_bytes)
            common = dict(clients=args.clients, streams=args.streams, core=load_core)
            log_file = tmp / "h2load.log"

            log("warm-up: 3 s of load per server")
            for s in servers:
                run_h2load(h2load, s, body, headers, duration=3, warmup=0.5, **common)

            for rep in range(args.reps):
                k = rep % len(servers)
                order = servers[k:] + servers[:k]
                log(f"rep {rep + 1}/{args.reps}: order {', '.join(s.label for s in order)}")
                for s in order:
                    load = run_h2load(
                        h2load,
                        s,
                        body,
                        headers,
                        duration=args.duration,
                        warmup=args.warmup,
                        show=rep == 0 and s is order[0],
                        **common,
                    )
                    check_load(s, load, min_body, "peak")
                    s.peak.append(load.rps)
                    s.cpu_s.append(load.cpu_s)
                    s.cpu_us.append(load.cpu_s / max(1, load.rps * args.duration) * 1e6)
                    log(
                        f"  peak  {s.label:<10} {load.rps:8.0f} rps, server CPU {load.cpu_s:5.2f} s "
                        f"({s.cpu_us[-1]:.0f} µs/req)"
                    )
                for s in order:
                    target = s.peak[-1] / 2
                    load = run_h2load(
                        h2load,
                        s,
                        body,
                        headers,
                        duration=args.duration,
                        warmup=args.warmup,
                        rps_per_client=target / args.lat_clients,
                        clients=args.lat_clients,
                        streams=args.lat_streams,
                        core=load_core,
                        log_file=log_file,
                        show=rep == 0 and s is order[0],
                    )
                    check_load(s, load, min_body, "half load")
                    d = sorted(load.durations_us)
                    s.p50.append(percentile(d, 50))
                    s.p99.append(percentile(d, 99))
                    p90 = percentile(d, 90)
                    s.half_rps.append(load.rps)
                    log(
                        f"  half  {s.label:<10} {load.rps:8.0f} rps (target {target:.0f}), "
                        f"p50 {fmt_ms(s.p50[-1])} ms, p90 {fmt_ms(p90)} ms, p99 {fmt_ms(s.p99[-1])} ms, n={len(d)}"
                    )

            verify(servers, name, md, video_bytes, "after")
        finally:
            for s in servers:
                s.stop()

    med = statistics.median
    echo = {s.label: s for s in servers}
    log("")
    log(
        f"Cached GetVideo, {args.duration:g} s runs, {args.reps} reps (medians). Peak: h2load -c {args.clients} "
        f"-m {args.streams}; half load: 50% of each server's peak in the same rep, "
        f"h2load -c {args.lat_clients} -m {args.lat_streams} --rps"
    )
    head = (
        f"{'server':<11}{'peak rps':>10}{'CPU-s':>8}{'CPU µs/req':>12}{'half rps':>10}"
        f"{'p50 ms':>8}{'p99 ms':>8}"
    )
    log(head)
    log("-" * len(head))
    for s in servers:
        log(
            f"{s.label:<11}{med(s.peak):>10.0f}{med(s.cpu_s):>8.2f}{med(s.cpu_us):>12.0f}"
            f"{med(s.half_rps):>10.0f}{fmt_ms(med(s.p50)):>8}{fmt_ms(med(s.p99)):>8}"
        )
    log("")
    for ref in ("echo-aio", "echo-sync"):
        if ref not in echo:
            continue
        ratios = [a / b for a, b in zip(streamify.peak, echo[ref].peak, strict=True)]
        cpu_ratios = [a / b for a, b in zip(streamify.cpu_us, echo[ref].cpu_us, strict=True)]
        log(
            f"streamify/{ref}: throughput ratio median {med(ratios):.2f} "
            f"(per rep {', '.join(f'{r:.2f}' for r in ratios)}); CPU per request x{med(cpu_ratios):.2f}"
        )
    ratio = med([a / b for a, b in zip(streamify.peak, echo["echo-aio"].peak, strict=True)])
    p99 = med(streamify.p99) / 1000
    log(
        f"goal: >= {GOAL_RATIO:.0%} of echo-aio throughput -> {ratio:.0%} "
        f"({'met' if ratio >= GOAL_RATIO else 'NOT met'}); p99 < {GOAL_P99_MS:g} ms at half load -> "
        f"{p99:.2f} ms ({'met' if p99 < GOAL_P99_MS else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
