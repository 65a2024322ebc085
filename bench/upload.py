"""Uploading 1 GiB: `streamify upload` (the whole CLI process) versus one raw PUT to the same SeaweedFS.

    .venv/bin/python bench/upload.py [--size-mib 1024] [--reps 3] [--parallel 4] [--no-explore]

What it does (see docs/performance.md, "Upload: 1 GiB through the CLI vs one raw PUT", and
recipes §2 and §11):

1. Starts the local mesh piece by piece, like `streamify run` but with free ports for every
   component (the mesh's metrics ports are fixed, and other jobs on this machine use them):
   the embedded SeaweedFS (`weed server`, through streamify.core.seaweed), `streamify serve
   metadata` and `streamify serve upload`, all with one temp STREAMIFY_DATA_DIR, a fixed JWT
   secret and STREAMIFY_LOG_LEVEL=WARNING. With exploration on (the default) a second Upload
   service runs with STREAMIFY_UPLOAD_PART_SIZE_BYTES=--big-part-mib (own SQLite file, same
   Metadata service and SeaweedFS).
2. Writes one random file of --size-mib (os.urandom in 8 MiB chunks) to a temp dir; the page
   cache holds it for every run.
3. Per rep, in an order that rotates every rep:
     cli       `streamify upload FILE --parallel N --json --quiet` as a subprocess, timed as a
               whole process (wall; CPU = utime+stime from wait4). The file's mtime is bumped
               first so the CLI sees a new file (its resume key is path+size+mtime).
     boto3     boto3 put_object(Body=open file) in this process (wall, this process's CPU).
     presigned one pre-signed PUT (signed like UploadStorage.sign_put) with requests streaming
               the open file, in this process.
   and, with exploration, the diagnostics: the CLI with --parallel 1/2/8, the CLI against the
   big-part Upload service, and a raw multipart upload (pre-signed parts of the CLI's part size
   PUT by N threads with requests, no gRPC) at 16 MiB and at the big part size.
   Every run records weed's CPU-seconds (/proc/<pid>/stat) and the Upload service's, and checks
   with head_object that storage holds exactly --size-mib; the object is then deleted.
4. Control plane: SignParts for 100 part numbers over gRPC to the running Upload service
   (--sign-calls times) -> µs per signed part end to end; UploadStorage.sign_part in-process.
5. Prints the table (per rep MiB/s, ratio CLI/raw where raw is the faster of boto3 and
   presigned in the same rep) and the median of per-rep ratios. Exits 0 (prints the goals).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import requests
from common import cpu_seconds, free_port, log, stop_process, wait_ready

from streamify.core.config import Settings
from streamify.core.seaweed import SeaweedFS, SeaweedPorts
from streamify.core.storage import make_s3_client
from streamify.upload.storage import UploadStorage
from streamify.v1 import upload_service_pb2 as api
from streamify.v1 import upload_service_pb2_grpc
from tests.support import keys

BIN = Path(sys.executable).parent
MiB = 1024 * 1024
BUCKET = "streamify-uploads"
CONTENT_TYPE = "video/mp4"
GOAL_RATIO = 0.95
GOAL_SIGN_US = 1000.0


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# --- services ----------------------------------------------------------------------------------


@dataclass
class Proc:
    label: str
    proc: subprocess.Popen
    port: int = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc, 15)


def start_service(name: str, label: str, env: dict[str, str], logs: Path, ports: set[int]) -> Proc:
    port, metrics = free_port(ports), free_port(ports)
    cmd = [
        str(BIN / "streamify"),
        "serve",
        name,
        "--port",
        str(port),
        "--metrics-port",
        str(metrics),
    ]
    shown = {
        k: v
        for k, v in env.items()
        if k.startswith("STREAMIFY_") and "SECRET" not in k and "KEY" not in k
    }
    log(f"$ {' '.join(f'{k}={v}' for k, v in sorted(shown.items()))} {shlex.join(cmd)}")
    out = open(logs / f"{label}.log", "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
    )
    out.close()
    p = Proc(label, proc, port)
    try:
        wait_ready(p.target, proc)
    except Exception:
        p.stop()
        raise
    return p


# --- the runs ----------------------------------------------------------------------------------


@dataclass
class Run:
    wall: float
    cpu: float  # client CPU-seconds
    weed_cpu: float
    upload_cpu: float
    inner: float = 0.0  # CLI: Uploader.upload() seconds from its JSON (no interpreter start/exit)
    parts: int = 0
    puts: int = 0


@dataclass
class Variant:
    key: str
    label: str
    kind: str  # cli | boto3 | presigned | multipart
    parallel: int = 4
    upload: Proc | None = None  # cli: which Upload service
    part_size: int = 0  # multipart
    runs: list[Run] = field(default_factory=list)


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.size = args.size_mib * MiB
        self.file = tmp / "bench.mp4"
        self.counter = 0
        self.token = keys.token("alice", ttl=24 * 3600)
        self.procs: list[Proc] = []
        self.weed: SeaweedFS | None = None

    # -- setup --
    def start(self) -> None:
        ports: set[int] = set()
        access, secret = "BENCH" + secrets.token_hex(6).upper(), secrets.token_urlsafe(24)
        data = self.tmp / "data"
        self.weed = SeaweedFS(
            data / "seaweedfs",
            SeaweedPorts.from_http(
                free_port(ports), free_port(ports), free_port(ports), free_port(ports)
            ),
            access,
            secret,
            buckets=(BUCKET, "streamify-media"),
        )
        log(f"$ {shlex.join(self.weed.command(self.weed.data_dir / 's3.json'))}")
        t0 = time.monotonic()
        self.weed.start()
        log(
            f"  SeaweedFS S3 {self.weed.endpoint_url} (pid {self.weed.pid}) ready in {time.monotonic() - t0:.1f} s"
        )
        overrides = self.weed.settings_overrides()
        self.settings = Settings(**overrides)  # type: ignore[arg-type]
        self.s3 = make_s3_client(self.settings)
        logs = self.tmp / "logs"
        logs.mkdir()
        base = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
        base |= {f"STREAMIFY_{k.upper()}": str(v) for k, v in overrides.items()}
        base |= {
            "STREAMIFY_EMBEDDED": "true",
            "STREAMIFY_DATA_DIR": str(data),
            **keys.SECRET_ENV,
            "STREAMIFY_LOG_LEVEL": "WARNING",
            "STREAMIFY_UPLOADS_BUCKET": BUCKET,
        }
        self.metadata = start_service("metadata", "metadata", base, logs, ports)
        self.procs.append(self.metadata)
        env = base | {"STREAMIFY_METADATA_TARGET": self.metadata.target}
        self.upload = start_service("upload", "upload", env, logs, ports)
        self.procs.append(self.upload)
        self.upload_big: Proc | None = None
        if self.args.explore:
            big = env | {
                "STREAMIFY_UPLOAD_PART_SIZE_BYTES": str(self.args.big_part_mib * MiB),
                "STREAMIFY_DATABASE_URL": f"sqlite:///{data / 'upload-big.db'}",
            }
            self.upload_big = start_service("upload", "upload-big", big, logs, ports)
            self.procs.append(self.upload_big)

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        if self.weed is not None:
            t0 = time.monotonic()
            self.weed.stop()
            log(f"SeaweedFS stopped in {time.monotonic() - t0:.1f} s")

    def make_file(self) -> None:
        t0 = time.monotonic()
        with open(self.file, "wb") as f:
            for _ in range(self.args.size_mib // 8):
                f.write(os.urandom(8 * MiB))
            if rest := self.size % (8 * MiB):
                f.write(os.urandom(rest))
        log(
            f"wrote {self.file} ({self.args.size_mib} MiB of os.urandom) in {time.monotonic() - t0:.1f} s"
        )

    # -- measuring --
    def _measured(self, fn) -> Run:
        assert self.weed is not None and self.weed.pid is not None
        w0, u0 = cpu_seconds(self.weed.pid), cpu_seconds(self.upload.proc.pid)
        ub0 = cpu_seconds(self.upload_big.proc.pid) if self.upload_big else 0.0
        run = fn()
        run.weed_cpu = cpu_seconds(self.weed.pid) - w0
        run.upload_cpu = cpu_seconds(self.upload.proc.pid) - u0
        if self.upload_big:
            run.upload_cpu += cpu_seconds(self.upload_big.proc.pid) - ub0
        return run

    def _check_and_delete(self, key: str) -> None:
        size = int(self.s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"])
        if size != self.size:
            raise RuntimeError(f"storage holds {size} bytes under {key}, not {self.size}")
        self.s3.delete_object(Bucket=BUCKET, Key=key)

    def run(self, v: Variant, show: bool = False) -> Run:
        self.counter += 1
        if v.kind == "cli":
            return self._cli(v, show)
        key = f"bench/{v.key}-{self.counter}-{secrets.token_hex(4)}"
        fn = {"boto3": self._boto3, "presigned": self._presigned, "multipart": self._multipart}[
            v.kind
        ]
        run = self._measured(lambda: fn(v, key))
        self._check_and_delete(key)
        return run

    def _cli(self, v: Variant, show: bool) -> Run:
        assert v.upload is not None
        now = time.time_ns()
        os.utime(
            self.file, ns=(now, now)
        )  # a new resume key: the CLI must upload, not find the last one
        cmd = [
            str(BIN / "streamify"),
            "upload",
            str(self.file),
            "--parallel",
            str(v.parallel),
            "--json",
            "--quiet",
            "--title",
            f"bench {self.counter}",
            "--server",
            v.upload.target,
        ]
        env = {
            name: value for name, value in os.environ.items() if not name.startswith("STREAMIFY_")
        }
        env |= {
            "STREAMIFY_TOKEN": self.token,
            "STREAMIFY_UPLOAD_STATE_DIR": str(self.tmp / "state"),
        }
        if show:
            log(
                f"  $ STREAMIFY_TOKEN=... STREAMIFY_UPLOAD_STATE_DIR={self.tmp / 'state'} {shlex.join(cmd)}"
            )
        out_path, err_path = self.tmp / "cli.out", self.tmp / "cli.err"

        def go() -> Run:
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                t0 = time.monotonic()
                proc = subprocess.Popen(
                    cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
                )
                _, status, ru = os.wait4(proc.pid, 0)
                wall = time.monotonic() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                raise RuntimeError(f"CLI exited {proc.returncode}: {err_path.read_text()[-2000:]}")
            return Run(wall=wall, cpu=ru.ru_utime + ru.ru_stime, weed_cpu=0, upload_cpu=0)

        run = self._measured(go)
        result = json.loads(out_path.read_text().strip().splitlines()[-1])
        if result.get("already_completed") or result.get("bytes_sent") != self.size:
            raise RuntimeError(f"the CLI did not send the whole file: {result}")
        run.inner, run.parts, run.puts = (
            result["seconds"],
            result["parts_total"],
            result["put_attempts"],
        )
        video_id = result["video"].removeprefix("videos/")
        upload_id = result["upload"].removeprefix("uploads/")
        self._check_and_delete(f"sources/{video_id}/{upload_id}")
        return run

    def _boto3(self, v: Variant, key: str) -> Run:
        c0, t0 = self_cpu(), time.monotonic()
        with open(self.file, "rb") as f:
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=f, ContentType=CONTENT_TYPE)
        return Run(wall=time.monotonic() - t0, cpu=self_cpu() - c0, weed_cpu=0, upload_cpu=0)

    def _presigned(self, v: Variant, key: str) -> Run:
        c0, t0 = self_cpu(), time.monotonic()
        url = self.signer.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": BUCKET,
                "Key": key,
                "ContentType": CONTENT_TYPE,
                "ContentLength": self.size,
            },
            ExpiresIn=900,
        )
        with requests.Session() as session, open(self.file, "rb") as f:
            reply = session.put(
                url, data=f, headers={"Content-Type": CONTENT_TYPE}, timeout=(10, 300)
            )
        if reply.status_code != 200:
            raise RuntimeError(f"presigned PUT: HTTP {reply.status_code} {reply.text[:300]}")
        return Run(wall=time.monotonic() - t0, cpu=self_cpu() - c0, weed_cpu=0, upload_cpu=0)

    def _multipart(self, v: Variant, key: str) -> Run:
        """What the CLI does minus gRPC and its bookkeeping: pre-signed parts, N threads."""
        c0, t0 = self_cpu(), time.monotonic()
        uid = self.s3.create_multipart_upload(Bucket=BUCKET, Key=key, ContentType=CONTENT_TYPE)[
            "UploadId"
        ]
        n = -(-self.size // v.part_size)
        slices = [
            (i + 1, i * v.part_size, min(v.part_size, self.size - i * v.part_size))
            for i in range(n)
        ]
        local = threading.local()

        def put(sl: tuple[int, int, int]) -> tuple[int, str]:
            number, offset, length = sl
            url = self.signer.generate_presigned_url(
                "upload_part",
                ExpiresIn=900,
                Params={
                    "Bucket": BUCKET,
                    "Key": key,
                    "UploadId": uid,
                    "PartNumber": number,
                    "ContentLength": length,
                },
            )
            if not hasattr(local, "session"):
                local.session = requests.Session()
            with open(self.file, "rb") as f:
                f.seek(offset)
                reply = local.session.put(url, data=_Window(f, length), timeout=(10, 300))
            if reply.status_code != 200:
                raise RuntimeError(f"part {number}: HTTP {reply.status_code} {reply.text[:300]}")
            return number, reply.headers["ETag"]

        with ThreadPoolExecutor(v.parallel) as pool:
            etags = sorted(pool.map(put, slices))
        self.s3.complete_multipart_upload(
            Bucket=BUCKET,
            Key=key,
            UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": n_, "ETag": e} for n_, e in etags]},
        )
        return Run(wall=time.monotonic() - t0, cpu=self_cpu() - c0, weed_cpu=0, upload_cpu=0)

    # -- control plane --
    def control_plane(self) -> dict[str, float]:
        out: dict[str, float] = {}
        md = (("authorization", f"Bearer {self.token}"),)
        with grpc.insecure_channel(self.upload.target) as ch:
            stub = upload_service_pb2_grpc.UploadServiceStub(ch)
            upload = stub.CreateUpload(
                api.CreateUploadRequest(
                    file_name="sign-bench.mp4",
                    size_bytes=200 * 16 * MiB,
                    content_type=CONTENT_TYPE,
                    title="sign bench",
                    multipart=True,
                    request_id=f"bench-sign-{secrets.token_hex(6)}",
                ),
                metadata=md,
                timeout=30,
            )
            req = api.SignPartsRequest(name=upload.name, part_numbers=list(range(1, 101)))
            for _ in range(10):  # warm-up (token cache, DB connection, signer)
                stub.SignParts(req, metadata=md, timeout=30)
            calls = self.args.sign_calls
            u0, c0, t0 = cpu_seconds(self.upload.proc.pid), self_cpu(), time.perf_counter()
            latencies = []
            for _ in range(calls):
                s = time.perf_counter()
                reply = stub.SignParts(req, metadata=md, timeout=30)
                latencies.append(time.perf_counter() - s)
            wall = time.perf_counter() - t0
            server = cpu_seconds(self.upload.proc.pid) - u0
            client = self_cpu() - c0
            assert len(reply.parts) == 100 and all(p.url for p in reply.parts)
            out["rpc_us_per_part"] = wall / calls / 100 * 1e6
            out["rpc_ms_p50"] = statistics.median(latencies) * 1e3
            out["server_cpu_us_per_part"] = server / calls / 100 * 1e6
            out["client_cpu_us_per_part"] = client / calls / 100 * 1e6
            out["reply_bytes"] = reply.ByteSize()
            out["calls"] = calls
            stub.AbortUpload(api.AbortUploadRequest(name=upload.name), metadata=md, timeout=30)
        storage = UploadStorage(self.s3, self.signer, BUCKET, 900)
        key, uid = "sources/x/y", "0123456789abcdef0123456789abcdef"
        for i in range(200):
            storage.sign_part(key, uid, i % 100 + 1, 16 * MiB)
        n = 5000
        t0 = time.perf_counter()
        for i in range(n):
            storage.sign_part(key, uid, i % 10000 + 1, 16 * MiB)
        out["sign_part_us"] = (time.perf_counter() - t0) / n * 1e6
        return out


class _Window:
    """`length` bytes of an open file from its current position, for requests' data= (has __len__)."""

    def __init__(self, f, length: int) -> None:
        self._f, self._left, self._len = f, length, length

    def __len__(self) -> int:
        return self._len

    def read(self, size: int = -1) -> bytes:
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._f.read(size) if size else b""
        self._left -= len(data)
        return data


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument(
        "--parallel",
        type=int,
        default=4,
        help="the CLI's --parallel (default 4, the CLI's default)",
    )
    p.add_argument(
        "--no-explore",
        dest="explore",
        action="store_false",
        help="only cli / boto3 / presigned, no diagnostic variants",
    )
    p.add_argument(
        "--big-part-mib", type=int, default=64, help="part size of the second Upload service"
    )
    p.add_argument("--sign-calls", type=int, default=300, help="SignParts calls (100 parts each)")
    p.add_argument(
        "--keep-tmp", action="store_true", help="do not delete the temp dir (file, data, logs)"
    )
    args = p.parse_args(argv)

    log(
        f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    bench = Bench(args, tmp)
    variants: list[Variant] = []
    control: dict[str, float] = {}
    try:
        bench.start()
        bench.signer = make_s3_client(bench.settings, public=True)
        bench.make_file()
        n = args.parallel
        variants = [
            Variant("cli", f"CLI --parallel {n} (16 MiB parts)", "cli", n, bench.upload),
            Variant("boto3", "boto3 put_object", "boto3"),
            Variant("presigned", "presigned PUT (requests)", "presigned"),
        ]
        if args.explore:
            for q in sorted({1, 2, 8} - {n}):
                variants.append(
                    Variant(
                        f"cli-p{q}", f"CLI --parallel {q} (16 MiB parts)", "cli", q, bench.upload
                    )
                )
            variants.append(
                Variant(
                    "cli-big",
                    f"CLI --parallel {n} ({args.big_part_mib} MiB parts)",
                    "cli",
                    n,
                    bench.upload_big,
                )
            )
            variants.append(
                Variant(
                    "mp16",
                    f"raw multipart 16 MiB x {n} threads",
                    "multipart",
                    n,
                    part_size=16 * MiB,
                )
            )
            variants.append(
                Variant(
                    "mpbig",
                    f"raw multipart {args.big_part_mib} MiB x {n} threads",
                    "multipart",
                    n,
                    part_size=args.big_part_mib * MiB,
                )
            )
        by_key = {v.key: v for v in variants}

        log(
            "warm-up: one CLI upload and one boto3 put_object (SeaweedFS grows its volumes on first writes)"
        )
        bench.run(by_key["cli"], show=True)
        bench.run(by_key["boto3"])

        for rep in range(args.reps):
            k = rep % len(variants)
            order = (
                variants[k:] + variants[:k]
                if rep % 2 == 0
                else list(reversed(variants[k:] + variants[:k]))
            )
            log(
                f"rep {rep + 1}/{args.reps} (load {os.getloadavg()[0]:.2f}): {', '.join(v.key for v in order)}"
            )
            for v in order:
                r = bench.run(v)
                v.runs.append(r)
                extra = (
                    f", inside upload() {r.inner:.2f} s, {r.parts} parts, {r.puts} PUTs"
                    if v.kind == "cli"
                    else ""
                )
                log(
                    f"  {v.label:<34} {args.size_mib / r.wall:7.1f} MiB/s  wall {r.wall:5.2f} s  client CPU "
                    f"{r.cpu:5.2f} s  weed CPU {r.weed_cpu:5.2f} s ({r.weed_cpu / r.wall:.2f} cores)  "
                    f"upload svc CPU {r.upload_cpu:.2f} s{extra}"
                )

        log("control plane: SignParts x100 parts over gRPC, UploadStorage.sign_part in-process")
        control = bench.control_plane()
    finally:
        bench.stop()
        if args.keep_tmp:
            log(f"kept {tmp}")
        else:
            subprocess.run(["rm", "-rf", str(tmp)], check=False)

    report(args, variants, control)
    return 0


def report(args: argparse.Namespace, variants: list[Variant], control: dict[str, float]) -> None:
    med = statistics.median
    size = args.size_mib
    by_key = {v.key: v for v in variants}
    cli, boto, pre = by_key["cli"], by_key["boto3"], by_key["presigned"]
    raw_walls = [min(b.wall, s.wall) for b, s in zip(boto.runs, pre.runs, strict=True)]
    ratios = [r / c.wall for c, r in zip(cli.runs, raw_walls, strict=True)]
    log("")
    log(
        f"{size} MiB upload to SeaweedFS, {args.reps} reps; raw = the faster of boto3 / presigned in that rep"
    )
    head = f"{'rep':>4}{'CLI MiB/s':>11}{'boto3':>9}{'presigned':>11}{'raw':>8}{'CLI/raw':>9}"
    log(head)
    log("-" * len(head))
    for i, (c, b, s, raw, ratio) in enumerate(
        zip(cli.runs, boto.runs, pre.runs, raw_walls, ratios, strict=True)
    ):
        log(
            f"{i + 1:>4}{size / c.wall:>11.1f}{size / b.wall:>9.1f}{size / s.wall:>11.1f}{size / raw:>8.1f}{ratio:>9.2f}"
        )
    log(
        f"median of per-rep CLI/raw: {med(ratios):.2f}  (goal >= {GOAL_RATIO:.2f}: "
        f"{'met' if med(ratios) >= GOAL_RATIO else 'NOT met'})"
    )
    log("")
    head = (
        f"{'variant':<36}{'MiB/s':>7}{'wall s':>8}{'client CPU-s':>14}{'weed CPU-s':>12}{'weed cores':>12}"
        f"{'svc CPU-s':>11}{'all CPU-s':>11}{'vs raw':>8}{'CPU vs raw':>12}"
    )
    log(
        "medians over reps; 'vs raw' = median of per-rep wall(raw)/wall(variant); 'CPU vs raw' = median of "
        "per-rep all-CPU(raw)/all-CPU(variant), all = client + weed + Upload service (on 2 busy cores "
        "throughput follows CPU cost, and CPU-seconds are far less noisy than wall time)"
    )
    log(head)
    log("-" * len(head))
    raw_cpu = [
        (b.cpu + b.weed_cpu + b.upload_cpu)
        if b.wall <= s.wall
        else (s.cpu + s.weed_cpu + s.upload_cpu)
        for b, s in zip(boto.runs, pre.runs, strict=True)
    ]
    for v in variants:
        vs = med([r / x.wall for x, r in zip(v.runs, raw_walls, strict=True)])
        total = [x.cpu + x.weed_cpu + x.upload_cpu for x in v.runs]
        cpu_vs = med([r / t for t, r in zip(total, raw_cpu, strict=True)])
        log(
            f"{v.label:<36}{size / med([x.wall for x in v.runs]):>7.1f}{med([x.wall for x in v.runs]):>8.2f}"
            f"{med([x.cpu for x in v.runs]):>14.2f}{med([x.weed_cpu for x in v.runs]):>12.2f}"
            f"{med([x.weed_cpu / x.wall for x in v.runs]):>12.2f}{med([x.upload_cpu for x in v.runs]):>11.2f}"
            f"{med(total):>11.2f}{vs:>8.2f}{cpu_vs:>12.2f}"
        )
    for v in variants:
        if v.kind == "cli":
            over = [x.wall - x.inner for x in v.runs]
            log(
                f"{v.label}: process wall - upload() = {med(over):.2f} s median (interpreter, imports, "
                f"token, exit); upload() alone {size / med([x.inner for x in v.runs]):.1f} MiB/s"
            )
    if control:
        log("")
        log(
            f"SignParts, 100 parts per call, {control['calls']:.0f} calls over gRPC: "
            f"{control['rpc_us_per_part']:.0f} µs per signed part end to end (p50 call {control['rpc_ms_p50']:.2f} ms, "
            f"{control['reply_bytes']:.0f} reply bytes); Upload service CPU {control['server_cpu_us_per_part']:.0f} µs/part, "
            f"client CPU {control['client_cpu_us_per_part']:.0f} µs/part"
        )
        log(f"UploadStorage.sign_part in-process: {control['sign_part_us']:.0f} µs per call")
        ok = control["rpc_us_per_part"] <= GOAL_SIGN_US
        log(f"goal <= 1 ms per signed part: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
