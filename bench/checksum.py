"""Verifying a declared SHA-256 at CompleteUpload: the Upload service's read-and-hash of the
stored file against `curl | sha256sum` (the tools an operator would reach for) and against a
plain streamed GET that hashes nothing (what storage alone costs), on one SeaweedFS.

    .venv/bin/python bench/checksum.py [--size-mib 1024] [--reps 3]

The three variants run interleaved in each rep, so drift on this noisy 2-core machine hits them
alike. Each prints wall seconds, MiB/s, this process's CPU-seconds (curl and sha256sum count as
children) and weed's CPU-seconds: every process that works is counted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import secrets
import shlex
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import cpu_seconds, free_port, log

from streamify.core.config import Settings
from streamify.core.seaweed import SeaweedFS, SeaweedPorts
from streamify.core.storage import make_s3_client
from streamify.upload.storage import HASH_CHUNK_BYTES, UploadStorage

MiB = 1024 * 1024
BUCKET = "bench-uploads"
KEY = "sources/bench/upload"


def own_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="streamify-bench-checksum-") as tmp:
        ports: set[int] = set()
        weed = SeaweedFS(
            Path(tmp) / "seaweedfs",
            SeaweedPorts.from_http(*(free_port(ports) for _ in range(4))),
            "BENCH" + secrets.token_hex(6).upper(),
            secrets.token_urlsafe(24),
            buckets=(BUCKET,),
        )
        log(f"$ {shlex.join(weed.command(weed.data_dir / 's3.json'))}")
        weed.start()
        try:
            run(weed, args)
        finally:
            weed.stop()


def run(weed: SeaweedFS, args: argparse.Namespace) -> None:
    s3 = make_s3_client(Settings(**weed.settings_overrides()))  # type: ignore[arg-type]
    storage = UploadStorage(s3, s3, BUCKET, url_ttl_seconds=3600)
    size = args.size_mib * MiB
    expected = hashlib.sha256()
    mp = s3.create_multipart_upload(Bucket=BUCKET, Key=KEY)
    parts = []
    for n, start in enumerate(range(0, size, 64 * MiB), start=1):
        block = os.urandom(min(64 * MiB, size - start))
        expected.update(block)
        etag = s3.upload_part(
            Bucket=BUCKET, Key=KEY, UploadId=mp["UploadId"], PartNumber=n, Body=block
        )["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key=KEY, UploadId=mp["UploadId"], MultipartUpload={"Parts": parts}
    )
    want = expected.hexdigest()
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY})
    log(f"stored {args.size_mib} MiB of os.urandom at s3://{BUCKET}/{KEY}")

    def streamify() -> str:
        return storage.sha256_of(KEY)

    def curl_sha256sum() -> str:
        out = subprocess.run(
            f"curl -sf {shlex.quote(url)} | sha256sum",
            shell=True,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.split()[0]

    def get_only() -> str:
        body = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"]
        for _ in body.iter_chunks(HASH_CHUNK_BYTES):
            pass
        return want  # hashes nothing: the floor storage sets

    variants: dict[str, Callable[[], str]] = {
        "Streamify sha256_of (GET + hashlib)": streamify,
        "curl | sha256sum": curl_sha256sum,
        "GET only, no hash (floor)": get_only,
    }
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    assert weed.pid is not None
    for _ in range(args.reps):
        for name, fn in variants.items():
            w0, c0, t0 = cpu_seconds(weed.pid), own_cpu(), time.monotonic()
            got = fn()
            wall = time.monotonic() - t0
            results[name].append((wall, own_cpu() - c0, cpu_seconds(weed.pid) - w0))
            if got != want:
                raise SystemExit(f"{name} computed {got}, the file's SHA-256 is {want}")
    log(f"\n{args.size_mib} MiB, {args.reps} reps, median (min-max wall)")
    log(f"{'variant':<38}{'wall s (min-max)':>20}{'MiB/s':>8}{'CPU-s':>7}{'weed CPU-s':>12}")
    for name, rows in results.items():
        walls = [r[0] for r in rows]
        wall = statistics.median(walls)
        log(
            f"{name:<38}{wall:>8.2f} ({min(walls):.2f}-{max(walls):.2f})"
            f"{args.size_mib / wall:>8.0f}{statistics.median(r[1] for r in rows):>7.2f}"
            f"{statistics.median(r[2] for r in rows):>12.2f}"
        )


if __name__ == "__main__":
    main()
