"""/media through Envoy's warm HTTP cache versus nginx serving the same files from disk.

    PYTHONPATH=services/gateway .venv/bin/python bench/media.py [--reps 3] [--duration 10] [--connections 32]

Same client (wrk, Debian; installed with apt-get if missing, as is nginx), same concurrency,
same run, interleaved reps. Envoy runs the gateway's generated config (`--concurrency 1`) with
SeaweedFS as the signed origin, in two shapes: with the ext_authz media check (the production
path: every request, hits included, asks the authz server, here for a PUBLIC video with a
static answer, so the Metadata lookup is out of the picture) and without it. nginx runs one worker
(`sendfile on`, `open_file_cache`). Prints requests/s and MiB/s per target and the median of the
per-rep ratios Envoy/nginx (goal: segments >= 1.1x, playlists >= 0.6x).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path[:0] = [
    str(Path(__file__).resolve().parents[1] / "services" / "gateway"),
    str(Path(__file__).resolve().parents[1]),
]

from common import stop_process  # noqa: E402

from streamify.core.config import Settings  # noqa: E402
from streamify.core.seaweed import SeaweedFS, SeaweedPorts  # noqa: E402
from streamify.core.storage import make_s3_client  # noqa: E402
from streamify.gateway.authz import AuthzServer, MediaAuthorizer  # noqa: E402
from streamify.gateway.config import Endpoint, GatewayConfig, MediaConfig, write  # noqa: E402
from streamify.gateway.envoy import Envoy  # noqa: E402
from tests.support.servers import _distinct_free_ports, free_port  # noqa: E402

VIDEO = "benchvideo0001"
SEGMENT_CC = "public, max-age=31536000, immutable"
PLAYLIST_CC = "public, max-age=2"


def ensure_tools() -> None:
    missing = [
        pkg
        for tool, pkg in (("wrk", "wrk"), ("nginx", "nginx"))
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists()
    ]
    if missing:
        subprocess.run(["apt-get", "install", "-y", *missing], check=True)


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def start_nginx(root: Path, port: int, workdir: Path) -> subprocess.Popen:
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
user root;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  open_file_cache max=1000 inactive=60s;
  types {{ video/mp2t ts; application/vnd.apple.mpegurl m3u8; }}
  server {{
    listen 127.0.0.1:{port} reuseport;
    root {root};
    location ~ \\.ts$ {{ add_header Cache-Control "{SEGMENT_CC}"; }}
    location ~ \\.m3u8$ {{ add_header Cache-Control "{PLAYLIST_CC}"; }}
  }}
}}
""")
    proc = subprocess.Popen(
        [nginx_binary(), "-c", str(conf), "-p", str(workdir), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    wait_http(f"http://127.0.0.1:{port}/media/videos/{VIDEO}/index.m3u8", proc)
    return proc


def wait_http(url: str, proc: subprocess.Popen | None = None) -> None:
    import requests

    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)


def wrk(url: str, duration: int, connections: int) -> tuple[float, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", out)
    mib = float(m.group(1)) * {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1, "GB": 1024}[m.group(2)]
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors on {url}:\n{out}")
    return rps, mib


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    ensure_tools()

    work = Path(tempfile.mkdtemp(prefix="streamify-bench-media-"))
    segment = os.urandom(1 << 20)
    playlist = (
        b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
        + b"".join(b"#EXTINF:2.000,\nseg%05d.ts\n" % i for i in range(95))
    )[:2048]
    files = {"seg00000.ts": (segment, SEGMENT_CC), "index.m3u8": (playlist, PLAYLIST_CC)}
    root = work / "www"
    (root / "media" / "videos" / VIDEO).mkdir(parents=True)
    for name, (body, _) in files.items():
        (root / "media" / "videos" / VIDEO / name).write_bytes(body)

    weed = SeaweedFS(
        work / "weed",
        SeaweedPorts(*_distinct_free_ports(8)),
        access_key=f"B{uuid.uuid4().hex[:12].upper()}",
        secret_key=uuid.uuid4().hex,
        buckets=("bench-media",),
    )
    procs: list[subprocess.Popen] = []
    envoys: list[Envoy] = []
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    try:
        weed.start()
        s3 = make_s3_client(Settings(**weed.settings_overrides()))
        for name, (body, cc) in files.items():
            s3.put_object(
                Bucket="bench-media", Key=f"videos/{VIDEO}/{name}", Body=body, CacheControl=cc
            )

        async def public(video_id: str) -> str:
            return "public"

        authz = AuthzServer(MediaAuthorizer(b"k" * 32, public))
        authz_port = asyncio.run_coroutine_threadsafe(authz.start(), loop).result()

        targets: dict[str, str] = {}
        for i, (label, with_authz) in enumerate((("envoy+authz", True), ("envoy", False))):
            port, admin = free_port(), free_port()
            cfg = GatewayConfig.local(
                {"metadata": ["127.0.0.1:1"]},
                listen_port=port,
                admin_port=admin,
                media=MediaConfig(
                    weed.endpoint_url,
                    "bench-media",
                    access_key_id=weed.access_key,
                    secret_access_key=weed.secret_key,
                    authz=Endpoint("127.0.0.1", authz_port) if with_authz else None,
                ),
            )
            envoy = Envoy(write(cfg, work / f"envoy-{i}.yaml"), admin, base_id=900 + i)
            envoy.start()
            envoys.append(envoy)
            targets[label] = f"http://127.0.0.1:{port}"
        nginx_port = free_port()
        procs.append(start_nginx(root, nginx_port, work))
        targets["nginx"] = f"http://127.0.0.1:{nginx_port}"

        import requests

        for base in targets.values():  # warm every cache, check every target serves the bytes
            for name, (body, _) in files.items():
                for _ in range(2):
                    r = requests.get(f"{base}/media/videos/{VIDEO}/{name}")
                    assert r.status_code == 200 and r.content == body, (base, r.status_code)

        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for rep in range(args.reps):
            for name in files:
                order = list(targets) if rep % 2 == 0 else list(reversed(targets))
                for label in order:
                    url = f"{targets[label]}/media/videos/{VIDEO}/{name}"
                    results.setdefault((name, label), []).append(
                        wrk(url, args.duration, args.connections)
                    )

        print(
            f"\nwrk -t1 -c{args.connections} -d{args.duration}s, {args.reps} interleaved reps, "
            f"{os.cpu_count()} cores, Envoy --concurrency 1, nginx 1 worker\n"
        )
        print(f"{'object':<12} {'target':<12} {'req/s (median)':>15} {'MiB/s':>9}   per-rep req/s")
        for name in files:
            for label in targets:
                runs = results[(name, label)]
                print(
                    f"{name:<12} {label:<12} {statistics.median(r[0] for r in runs):>15.0f} "
                    f"{statistics.median(r[1] for r in runs):>9.1f}   {[round(r[0]) for r in runs]}"
                )
        print()
        for name in files:
            for label in ("envoy+authz", "envoy"):
                ratios = [
                    e[0] / n[0]
                    for e, n in zip(results[(name, label)], results[(name, "nginx")], strict=True)
                ]
                print(
                    f"{name:<12} {label}/nginx: median {statistics.median(ratios):.2f}x  per rep {[round(x, 2) for x in ratios]}"
                )
    finally:
        for envoy in envoys:
            envoy.stop()
        for proc in procs:
            stop_process(proc, 20)
        weed.stop()
        loop.call_soon_threadsafe(loop.stop)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
