"""The Streamify load test, end to end, from one command (run it through `loadtest/run.sh`).

  loadtest/run.sh                                  start a mesh, 30 users for 60 s, report
  loadtest/run.sh --gateway 127.0.0.1:8080         against a running `streamify run`
  loadtest/run.sh --chaos                          ... and kill replicas and a worker under load

Steps: (1) start `streamify run` on free ports with a fresh data dir, unless --gateway names a
running mesh; (2) mint tokens with the mesh's key (like `streamify token`); (3) seed a few READY,
PUBLIC videos (upload with the CLI's Uploader, wait READY, UpdateVideo visibility PUBLIC); (4) run
locust headless from loadtest/.venv for a bounded user count and duration (it stops by itself);
with --chaos, SIGKILL one Metadata replica, one Upload replica and one transcode worker during
the run and wait for the supervisor to restart each; (5) check that every upload CompleteUpload
accepted ends READY (a bounded wait); (6) write OUT/summary.json, locust's CSV files and HTML
report, print a table, and exit 0 only when nothing failed: no failed request and no lost upload.

Runs with the project's .venv (streamify, PyAV for the clips); locust runs in loadtest/.venv.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import csv
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOADTEST = ROOT / "loadtest"
LOCUST_VENV = LOADTEST / ".venv"
sys.path.insert(0, str(ROOT))  # tests.support.clips

PLAYBACK_PREFIXES = ("MetadataService/ListVideos", "MetadataService/GetVideo", "/media ")
PROFILES = {"mixed": ["Viewer", "Uploader"], "playback": ["Viewer"], "upload": ["Uploader"]}
SEED_OWNER = "lt-seed"
VIEWER = "lt-viewer"


def say(text: str) -> None:
    print(f"[loadtest] {text}", file=sys.stderr, flush=True)


# --- the locust venv -------------------------------------------------------------------------


def ensure_locust_venv() -> Path:
    """loadtest/.venv with locust (never in the services' .venv: locust brings gevent, and sonora
    would break it). Rebuilt when loadtest/requirements.txt or requirements.lock change; the lock
    is a constraint, so shared packages stay at the services' versions."""
    stamp = hashlib.sha256(
        (LOADTEST / "requirements.txt").read_bytes() + (ROOT / "requirements.lock").read_bytes()
    ).hexdigest()[:16]
    stamp_file = LOCUST_VENV / ".loadtest-stamp"
    python = LOCUST_VENV / "bin" / "python"
    if not python.exists():
        say(f"creating {LOCUST_VENV}")
        subprocess.run(
            [getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(LOCUST_VENV)],
            check=True,
        )
    if not stamp_file.exists() or stamp_file.read_text().strip() != stamp:
        say(
            "installing locust into loadtest/.venv (loadtest/requirements.txt, constrained by requirements.lock)"
        )
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
                str(LOADTEST / "requirements.txt"),
                "-c",
                str(ROOT / "requirements.lock"),
            ],
            check=True,
        )
        stamp_file.write_text(stamp)
    return LOCUST_VENV / "bin" / "locust"


# --- the mesh ----------------------------------------------------------------------------------


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(length: int, limit: int = 55000) -> int:
    """The first of `length` consecutive free ports below `limit`."""
    for _ in range(500):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            start = s.getsockname()[1]
        if start + length < limit and all(_free(p) for p in range(start, start + length)):
            return start
    raise RuntimeError("no run of free ports")


class Mesh:
    """`streamify run` as a subprocess on free ports with its own data dir; stopped by PID."""

    def __init__(self, data_dir: Path, workers: int = 2) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "STREAMIFY_DATA_DIR": str(data_dir),
            "STREAMIFY_LOG_LEVEL": "WARNING",
        }
        for name in (
            "PORT",
            "MASTER_PORT",
            "VOLUME_PORT",
            "FILER_PORT",
        ):  # SeaweedFS: + 10000 for gRPC
            self.env[f"STREAMIFY_SEAWEEDFS_{name}"] = str(free_ports(1))
        base, self.gateway_port = free_ports(13), free_ports(4)
        self.gateway = f"127.0.0.1:{self.gateway_port}"
        self.argv = [
            str(ROOT / ".venv" / "bin" / "streamify"),
            "run",
            "--port",
            str(base),
            "--upload-port",
            str(base + 1),
            "--transcode-port",
            str(base + 2),
            "--gateway-port",
            str(self.gateway_port),
            "--metrics-port",
            "0",
            "--workers",
            str(workers),
        ]
        self.log_path = data_dir / "run.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 180.0) -> Mesh:
        log = open(self.log_path, "w")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while "Press Ctrl-C to stop." not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    "streamify run did not come up:\n"
                    + self.log_path.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.2)
        say(
            f"mesh up: gateway {self.gateway}, supervisor pid {self.process.pid}, data {self.data_dir}"
        )
        return self

    def stop(self) -> None:
        """SIGINT to the supervisor (it stops its children by PID, newest first), then wait."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- processes of a running mesh (for --chaos) ----------------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def find_supervisor(gateway_port: int) -> int:
    """The `streamify run` process whose gateway is on `gateway_port` (8080 without the flag)."""
    found = []
    for pid in _pids():
        argv = _cmdline(pid)
        if "run" not in argv:
            continue
        i = argv.index("run")
        if not any(a.endswith("streamify") or a == "streamify.cli" for a in argv[:i]):
            continue
        port = int(argv[argv.index("--gateway-port") + 1]) if "--gateway-port" in argv else 8080
        if port == gateway_port:
            found.append(pid)
    if len(found) != 1:
        raise RuntimeError(
            f"found {len(found)} `streamify run` processes for gateway port {gateway_port}; "
            "give --mesh-pid"
        )
    return found[0]


def children(supervisor: int) -> dict[int, list[str]]:
    return {pid: argv for pid in _pids() if _ppid(pid) == supervisor and (argv := _cmdline(pid))}


def role_of(argv: list[str]) -> str:
    """metadata:PORT, upload:PORT, transcode:PORT, worker, ... from a child's command line."""
    if "serve" in argv:
        i = argv.index("serve")
        return f"{argv[i + 1]}:{argv[argv.index('--port') + 1]}"
    if "worker" in argv:
        return "worker"
    return Path(argv[0]).name if argv else "?"


class Chaos(threading.Thread):
    """During the run: SIGKILL one Metadata replica, one Upload replica and one transcode worker
    (a busy one when one is busy), each at its moment, and wait until the supervisor has started
    a new process for it (and, for a service, its port accepts connections again)."""

    def __init__(self, supervisor: int, start: float, duration: float) -> None:
        super().__init__(name="chaos", daemon=True)
        self.supervisor = supervisor
        self.plan = [
            (start + duration * 0.25, "metadata"),
            (start + duration * 0.45, "upload"),
            (start + duration * 0.60, "worker"),
        ]
        self.events: list[dict] = []
        self.errors: list[str] = []

    def run(self) -> None:
        for at, kind in self.plan:
            time.sleep(max(0.0, at - time.time()))
            try:
                self.events.append(self.kill_one(kind))
            except Exception as exc:  # noqa: BLE001 - reported in the summary
                self.errors.append(f"{kind}: {exc}")

    def kill_one(self, kind: str) -> dict:
        procs = children(self.supervisor)
        matches = sorted(
            (pid, role_of(argv)) for pid, argv in procs.items() if role_of(argv).startswith(kind)
        )
        matches.sort(key=lambda m: m[1])  # the first replica (lowest port): internal callers use it
        if not matches:
            raise RuntimeError(f"no {kind} process under supervisor {self.supervisor}")
        busy: list[tuple[int, str]] = []
        if kind == "worker":  # prefer a worker running a task (its task runs in a child process)
            wait_until = time.time() + 10
            while not busy and time.time() < wait_until:
                busy = [m for m in matches if any(_ppid(p) == m[0] for p in _pids())]
                if not busy:
                    time.sleep(0.05)
            pid, role = (busy or matches)[0]
        else:
            pid, role = matches[0]
        before = {
            p for p, argv in procs.items() if role_of(argv) == role
        }  # workers share a command line
        os.kill(pid, signal.SIGKILL)
        killed = time.time()
        say(f"chaos: SIGKILL {role} (pid {pid})")
        new_pid = None
        while time.time() - killed < 60:
            now = children(self.supervisor)
            fresh = [p for p, argv in now.items() if role_of(argv) == role and p not in before]
            if fresh and (":" not in role or _accepts(int(role.split(":")[1]))):
                new_pid = fresh[0]
                break
            time.sleep(0.1)
        event = {
            "kind": kind,
            "role": role,
            "pid": pid,
            "killed_at": killed,
            "new_pid": new_pid,
            "busy": bool(busy) if kind == "worker" else None,
            "restarted_after_s": round(time.time() - killed, 2) if new_pid else None,
        }
        say(f"chaos: {role} back as pid {new_pid} after {event['restarted_after_s']} s")
        return event


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- tokens, clips, seeding --------------------------------------------------------------------


def minter(data_dir: Path):
    """Mints tokens exactly like `streamify token` with the same STREAMIFY_DATA_DIR."""
    os.environ["STREAMIFY_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("STREAMIFY_EMBEDDED", "true")
    from streamify.core.auth import mint_token
    from streamify.core.config import Settings
    from streamify.core.token_keys import DEV_KEYS_FILE, USERS, signing_key

    settings = Settings()
    if not settings.signing_keys and not (Path(data_dir) / DEV_KEYS_FILE).exists():
        raise SystemExit(
            f"{data_dir} has no {DEV_KEYS_FILE}: give the mesh's data dir (--data-dir or "
            "STREAMIFY_DATA_DIR), or STREAMIFY_SIGNING_KEYS with the `users` key"
        )
    key = signing_key(settings, USERS)
    return lambda user: mint_token(
        key, user, kind="user", ttl_seconds=6 * 3600, issuer=settings.jwt_issuer
    )


def make_clips(work: Path) -> tuple[list[Path], list[Path]]:
    """(seed clips: 640x360, 16 s -> 360p + 240p, 4 segments each; upload clips: small and short)."""
    from tests.support.clips import make_clip

    work.mkdir(parents=True, exist_ok=True)
    seed = [
        make_clip(work / f"seed-{i}.mp4", width=640, height=360, duration=16.0) for i in range(2)
    ]
    small = [
        make_clip(work / "up-240p-3s.mp4", width=426, height=240, duration=3.0),
        make_clip(work / "up-180p-2s.mp4", width=320, height=180, duration=2.0),
        make_clip(work / "up-240p-4s.mp4", width=426, height=240, duration=4.0, fps=25),
    ]
    return seed, small


def _metadata_stub(gateway: str):
    import grpc

    from streamify.v1 import metadata_service_pb2_grpc

    channel = grpc.insecure_channel(gateway)
    return channel, metadata_service_pb2_grpc.MetadataServiceStub(channel)


def seed_videos(
    gateway: str, token: str, clips: list[Path], count: int, state_dir: Path
) -> list[str]:
    """At least `count` READY PUBLIC videos owned by SEED_OWNER (reuses ones a previous run made)."""
    from google.protobuf import field_mask_pb2

    from streamify.cli.upload.transport import Uploader, watch_video
    from streamify.v1 import metadata_service_pb2 as meta
    from streamify.v1 import video_pb2

    channel, stub = _metadata_stub(gateway)
    md = (("authorization", f"Bearer {token}"),)
    have = [
        v.name
        for v in stub.ListVideos(
            meta.ListVideosRequest(
                owner=f"users/{SEED_OWNER}", status=video_pb2.VIDEO_STATUS_READY, page_size=100
            ),
            metadata=md,
            timeout=10,
        ).videos
    ]
    missing = max(0, count - len(have))
    say(f"seeding: {len(have)} READY public videos already, uploading {missing}")

    def one(i: int) -> str:
        with Uploader(
            gateway, token, quiet=True, state_directory=state_dir / f"seed-{i}"
        ) as uploader:
            result = uploader.upload(clips[i % len(clips)], title=f"Load-test seed {i}")
        stub.UpdateVideo(
            meta.UpdateVideoRequest(
                video=video_pb2.Video(name=result.video, visibility=video_pb2.VISIBILITY_PUBLIC),
                update_mask=field_mask_pb2.FieldMask(paths=["visibility"]),
                request_id=f"lt-seed-{result.video}"[:64],
            ),
            metadata=md,
            timeout=10,
        )
        watch_video(gateway, token, result.video, say=lambda _t: None)
        return result.video

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, missing)) as pool:
        made = list(pool.map(one, range(missing)))
    if missing:
        say(f"seeded {missing} videos in {time.monotonic() - started:.1f} s")
    channel.close()
    return have + made


# --- after the run -----------------------------------------------------------------------------


def read_stats(csv_path: Path) -> list[dict]:
    rows = []
    with open(csv_path, newline="") as f:
        for r in csv.DictReader(f):
            rows.append(
                {
                    "type": r["Type"],
                    "name": r["Name"],
                    "requests": int(r["Request Count"]),
                    "failures": int(r["Failure Count"]),
                    "rps": round(float(r["Requests/s"]), 2),
                    "p50_ms": _ms(r["50%"]),
                    "p95_ms": _ms(r["95%"]),
                    "p99_ms": _ms(r["99%"]),
                    "max_ms": _ms(r["Max Response Time"]),
                }
            )
    return rows


def _ms(value: str) -> float | None:
    return None if value in ("", "N/A") else round(float(value), 1)


def check_uploads(gateway: str, ledger: Path, tokens: list[str], timeout: float) -> dict:
    """Every upload CompleteUpload accepted must end READY; waits up to `timeout` for them."""
    from streamify.v1 import metadata_service_pb2 as meta
    from streamify.v1 import video_pb2

    entries = (
        [json.loads(line) for line in ledger.read_text().splitlines()] if ledger.exists() else []
    )
    channel, stub = _metadata_stub(gateway)
    status: dict[str, str] = {}
    reasons: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    pending = {e["video"]: tokens[e["uploader"]] for e in entries}
    while pending and time.monotonic() < deadline:
        for name, token in list(pending.items()):
            try:
                video = stub.GetVideo(
                    meta.GetVideoRequest(name=name),
                    timeout=10,
                    metadata=(("authorization", f"Bearer {token}"),),
                )
            except Exception as exc:  # noqa: BLE001 - keep polling, report the last error
                status[name] = f"error: {exc}"
                continue
            status[name] = video_pb2.VideoStatus.Name(video.status)
            if video.status in (video_pb2.VIDEO_STATUS_READY, video_pb2.VIDEO_STATUS_FAILED):
                reasons[name] = video.failure_reason
                del pending[name]
        if pending:
            time.sleep(1)
    channel.close()
    ready = sum(1 for s in status.values() if s == "VIDEO_STATUS_READY")
    not_ready = {
        n: s + (f" ({reasons[n]})" if reasons.get(n) else "")
        for n, s in status.items()
        if s != "VIDEO_STATUS_READY"
    }
    return {
        "completed": len(entries),
        "ready": ready,
        "lost": len(entries) - ready,
        "not_ready": not_ready,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| type | name | requests | failures | req/s | p50 ms | p95 ms | p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['type']} | {r['name']} | {r['requests']} | {r['failures']} | {r['rps']} | "
            f"{_fmt(r['p50_ms'])} | {_fmt(r['p95_ms'])} | {_fmt(r['p99_ms'])} |"
        )
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def _seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="loadtest/run.sh",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--gateway", help="host:port of a running mesh's Envoy gateway (default: start a mesh)"
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        help="that mesh's STREAMIFY_DATA_DIR, for tokens (default: "
        "$STREAMIFY_DATA_DIR or .streamify)",
    )
    p.add_argument(
        "--start-mesh",
        action="store_true",
        help="start a mesh on free ports (the default without --gateway)",
    )
    p.add_argument(
        "--mesh-pid",
        type=int,
        help="PID of `streamify run` for --chaos (default: found by gateway port)",
    )
    p.add_argument("--users", "-u", type=int, default=30, help="peak concurrent users (default 30)")
    p.add_argument(
        "--spawn-rate", "-r", type=float, default=5.0, help="users started per second (default 5)"
    )
    p.add_argument("--duration", "-t", default="60s", help="run time, e.g. 60s, 2m (default 60s)")
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="mixed",
        help="mixed: Viewer:Uploader 9:1 by weight (default); playback; upload",
    )
    p.add_argument(
        "--uploaders",
        type=int,
        default=0,
        help="exactly this many of the users upload (default: by weight)",
    )
    p.add_argument(
        "--seed-videos",
        type=int,
        default=3,
        help="READY public videos to have before the run (default 3)",
    )
    p.add_argument(
        "--no-wait-ready", action="store_true", help="uploaders do not follow their video to READY"
    )
    p.add_argument(
        "--chaos",
        action="store_true",
        help="kill a Metadata and an Upload replica and a worker mid-run",
    )
    p.add_argument(
        "--ready-timeout",
        type=float,
        default=300.0,
        help="bounded wait for uploads to be READY after the run",
    )
    p.add_argument(
        "--workers", type=int, default=2, help="transcode workers of a mesh this command starts"
    )
    p.add_argument("--out", type=Path, help="report directory (default loadtest/reports/<time>)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = (args.out or LOADTEST / "reports" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    locust = ensure_locust_venv()
    mesh = None
    with contextlib.ExitStack() as stack:
        if args.gateway and not args.start_mesh:
            gateway = args.gateway
            data_dir = (
                args.data_dir or Path(os.environ.get("STREAMIFY_DATA_DIR", ROOT / ".streamify"))
            ).resolve()
        else:
            mesh_dir = Path(tempfile.mkdtemp(prefix="streamify-loadtest-"))
            mesh = Mesh(mesh_dir / "data", workers=args.workers).start()
            stack.callback(_stop_mesh, mesh, mesh_dir, out)
            gateway, data_dir = mesh.gateway, mesh.data_dir
        mint = minter(data_dir)
        seed_clips, upload_clips = make_clips(out / "clips")
        viewer_token = mint(VIEWER)
        uploader_tokens = [mint(f"lt-uploader-{i}") for i in range(max(1, args.users))]
        seeded = seed_videos(
            gateway, mint(SEED_OWNER), seed_clips, args.seed_videos, out / "upload-state"
        )
        seed_file = out / "seed.json"
        seed_file.write_text(
            json.dumps(
                {
                    "owner": f"users/{SEED_OWNER}",
                    "videos": seeded,
                    "viewer_token": viewer_token,
                    "uploader_tokens": uploader_tokens,
                    "clips": [str(c) for c in upload_clips],
                }
            )
        )
        ledger, counters = out / "uploads.jsonl", out / "client_counters.json"
        ledger.unlink(missing_ok=True)
        env = {
            **os.environ,
            "STREAMIFY_LT_GATEWAY": gateway,
            "STREAMIFY_LT_SEED": str(seed_file),
            "STREAMIFY_LT_LEDGER": str(ledger),
            "STREAMIFY_LT_COUNTERS": str(counters),
            "STREAMIFY_LT_WAIT_READY": "0" if args.no_wait_ready else "1",
            "STREAMIFY_LT_UPLOADERS": str(args.uploaders),
        }
        for key in ("VIRTUAL_ENV", "PYTHONPATH"):
            env.pop(key, None)
        command = [
            str(locust),
            "-f",
            str(LOADTEST / "locustfile.py"),
            "--headless",
            "-u",
            str(args.users),
            "-r",
            str(args.spawn_rate),
            "-t",
            args.duration,
            "--stop-timeout",
            "10s",
            "--host",
            f"http://{gateway}",
            "--only-summary",
            "--csv",
            str(out / "locust"),
            "--html",
            str(out / "locust.html"),
            "--logfile",
            str(out / "locust.log"),
            *PROFILES[args.profile],
        ]
        chaos = None
        if args.chaos:
            supervisor = args.mesh_pid or (
                mesh.process.pid if mesh else find_supervisor(int(gateway.rsplit(":", 1)[1]))
            )
            ramp = args.users / max(args.spawn_rate, 0.1)
            chaos = Chaos(supervisor, time.time() + ramp, _seconds(args.duration) - ramp)
        say(f"locust: {args.users} users ({args.profile}), {args.duration}, gateway {gateway}")
        started = time.time()
        process = subprocess.Popen(
            command,
            env=env,
            cwd=LOADTEST,
            stdout=open(out / "locust.out", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        if chaos:
            chaos.start()
        locust_rc = process.wait()
        wall = time.time() - started
        if chaos:
            chaos.join(timeout=70)
        say(
            f"locust exited rc={locust_rc} after {wall:.1f} s; checking that every completed upload ends READY"
        )
        stats = read_stats(out / "locust_stats.csv")
        uploads = check_uploads(gateway, ledger, uploader_tokens, args.ready_timeout)
        playback_failures = sum(
            r["failures"]
            for r in stats
            if r["name"] != "Aggregated" and r["name"].startswith(PLAYBACK_PREFIXES)
        )
        total = next((r for r in stats if r["name"] == "Aggregated"), None)
        summary = {
            "command": " ".join(["loadtest/run.sh", *(argv if argv is not None else sys.argv[1:])]),
            "gateway": gateway,
            "users": args.users,
            "duration": args.duration,
            "profile": args.profile,
            "locust_rc": locust_rc,
            "locust_wall_s": round(wall, 1),
            "requests": total["requests"] if total else 0,
            "failures": total["failures"] if total else 0,
            "rps": total["rps"] if total else 0,
            "playback_failures": playback_failures,
            "uploads": uploads,
            "client_counters": json.loads(counters.read_text()) if counters.exists() else {},
            "chaos": {"events": chaos.events, "errors": chaos.errors} if chaos else None,
            "seed_videos": seeded,
            "stats": stats,
            "mesh_restarts": _restarts(data_dir) if mesh else None,
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        print(table(stats))
        print(
            f"\nrequests {summary['requests']}, failures {summary['failures']} "
            f"(playback {playback_failures}), {summary['rps']} req/s; uploads completed {uploads['completed']}, "
            f"READY {uploads['ready']}, lost {uploads['lost']}; retries {summary['client_counters']}"
        )
        if chaos:
            print(
                "chaos: "
                + "; ".join(
                    f"{e['role']} pid {e['pid']} -> {e['new_pid']} ({e['restarted_after_s']} s)"
                    for e in chaos.events
                )
                + ("; errors: " + "; ".join(chaos.errors) if chaos.errors else "")
            )
        print(f"report: {out}/locust.html, {out}/locust_stats.csv, {out}/summary.json")
        ok = (
            locust_rc == 0
            and summary["failures"] == 0
            and uploads["lost"] == 0
            and (
                chaos is None
                or (
                    len(chaos.events) == 3
                    and not chaos.errors
                    and all(e["new_pid"] for e in chaos.events)
                )
            )
        )
        return 0 if ok else 1


def _stop_mesh(mesh: Mesh, mesh_dir: Path, out: Path) -> None:
    """Stops the mesh this command started, keeps its logs in OUT/mesh-logs, removes its data."""
    say("stopping the mesh")
    mesh.stop()
    with contextlib.suppress(OSError):
        shutil.copytree(mesh.data_dir / "logs", out / "mesh-logs", dirs_exist_ok=True)
        shutil.copy2(mesh.log_path, out / "mesh-logs" / "run.log")
    shutil.rmtree(mesh_dir, ignore_errors=True)


def _restarts(data_dir: Path) -> list[str]:
    """The supervisor's "exited ...; restarting" lines (from the mesh's run.log)."""
    log = data_dir / "run.log"
    if not log.exists():
        return []
    return [line for line in log.read_text(errors="replace").splitlines() if "restarting" in line]


if __name__ == "__main__":
    sys.exit(main())
